"""runner.weights.caffe: BVLC Caffe's .caffemodel files read without Caffe or protobuf, lazily, in both
of Caffe's layouts; anything damaged in the file is one UserError line naming the file and the layer.
Files are written by tests/caffe_files.py. How fast a real-sized file reads is measured by commands,
not here."""

import itertools

import numpy as np
import pytest

import caffe_files as cf
from runner.mistakes.errors import UserError
from runner.weights import caffe, tensors

RANDOM = np.random.default_rng(0)


def floats(*shape: int) -> np.ndarray:
    return RANDOM.standard_normal(shape).astype(np.float32)


# BVLC's names, Caffe's shapes: convolutions (out, in/group, kh, kw), inner products (out, in).
BLOBS = {"conv1/7x7_s2.weight": floats(4, 3, 3, 3), "conv1/7x7_s2.bias": floats(4),
         "inception_3a/1x1.weight": floats(5, 2, 1, 1), "inception_3a/1x1.bias": floats(5),
         "loss1/fc.weight": floats(6, 20), "loss1/fc.bias": floats(6),
         "score.weight": floats(1, 6), "score.bias": floats(1),
         "conv_without_bias.weight": floats(2, 4, 3, 1)}
SMALL = {"conv1.weight": floats(2, 1, 2, 1), "conv1.bias": floats(2), "fc6.weight": floats(2, 3), "fc6.bias": floats(2)}


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("legacy", [True, False], ids=["v1_layers", "new_layer"])
def test_both_layouts_read_back_keys_shapes_and_values(tmp_path, legacy):
    path = cf.write_caffemodel(tmp_path / "net.caffemodel", BLOBS, legacy=legacy, diffs=True)
    with tensors.opened(path) as found:
        assert list(found) == list(BLOBS)
        for key, array in BLOBS.items():
            assert found.shape(key) == array.shape
            assert found[key].dtype == np.float32
            np.testing.assert_array_equal(found[key], array)


@pytest.mark.parametrize("legacy", [True, False], ids=["v1_layers", "new_layer"])
def test_floats_written_one_field_each_read_as_packed_ones(tmp_path, legacy):
    weight, bias = floats(3, 7), floats(3)
    written = [cf.blob(cf.as_written(array, legacy), legacy=legacy, one_field_each=True, diff=True)
               for array in (weight, bias)]
    path = cf.write_net(tmp_path / "net.caffemodel", [cf.layer("fc8", "InnerProduct", written, legacy=legacy)])
    with caffe.opened(path) as found:
        np.testing.assert_array_equal(found["fc8.weight"], weight)
        np.testing.assert_array_equal(found["fc8.bias"], bias)


def test_opening_reads_no_floats_and_a_lookup_reads_the_file_then(tmp_path, monkeypatch):
    ones = {"fc6.weight": np.ones((3, 4), np.float32)}
    path = cf.write_caffemodel(tmp_path / "net.caffemodel", ones)
    reads = []
    read = caffe._read
    monkeypatch.setattr(caffe, "_read", lambda *args: reads.append(args[2]) or read(*args))  # args[2]: the key
    with caffe.opened(path) as found:
        assert found.shape("fc6.weight") == (3, 4) and "fc6.weight" in found and list(found) == ["fc6.weight"]
        assert reads == []
        data = path.read_bytes()
        packed = ones["fc6.weight"].tobytes()
        path.write_bytes(data.replace(packed, (2 * ones["fc6.weight"]).tobytes()))
        np.testing.assert_array_equal(found["fc6.weight"], 2 * ones["fc6.weight"])
        assert reads == ["fc6.weight"]


def test_a_file_cut_while_open_is_one_line(tmp_path):
    path = cf.write_caffemodel(tmp_path / "net.caffemodel", SMALL)
    with caffe.opened(path) as found:
        path.write_bytes(path.read_bytes()[:40])
        with pytest.raises(UserError) as error:
            found["fc6.weight"]
    assert_one_line(error, str(path), "fc6.weight")


@pytest.mark.parametrize("legacy", [True, False], ids=["v1_layers", "new_layer"])
def test_every_cut_of_a_file_is_one_line_or_a_whole_shorter_net(tmp_path, legacy):
    """Protobuf has no end marker: a cut between two top-level fields leaves a valid net of fewer layers."""
    fields = cf.net_fields(SMALL, legacy=legacy, diffs=True)
    data = b"".join(fields)
    between_fields = {0, *itertools.accumulate(len(field) for field in fields)}
    path = tmp_path / "cut.caffemodel"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        if cut in between_fields:
            assert_shorter_net_or_none(path)
            continue
        with pytest.raises(UserError) as error:
            with caffe.opened(path):
                pass
        assert_one_line(error, str(path), "layer")


def test_a_file_cut_through_a_layer_names_it(tmp_path):
    fields = cf.net_fields(SMALL)
    whole = b"".join(fields)
    path = cf.write_net(tmp_path / "cut.caffemodel", [whole[:len(whole) - len(fields[-1]) - 10]])
    with pytest.raises(UserError) as error:
        with caffe.opened(path):
            pass
    assert_one_line(error, str(path), "layer 3 (fc6)", "past the end of the file")


def assert_shorter_net_or_none(path) -> None:
    try:
        with caffe.opened(path) as found:
            for key in found:
                np.testing.assert_array_equal(found[key], SMALL[key])
    except UserError as error:
        assert "\n" not in str(error) and ("empty" in str(error) or "no Convolution or InnerProduct" in str(error))


WEIGHT = floats(2, 3)


def fc(blobs: list[bytes], name: str = "fc7", type_: str = "InnerProduct", legacy: bool = True) -> bytes:
    return cf.layer(name, type_, blobs, legacy=legacy)


def legacy_blob(array: np.ndarray = WEIGHT, **options) -> bytes:
    return cf.blob(array.reshape(cf.legacy_dims(array.shape)), **options)


# Each damaged net, as its top-level fields, and what its line says after naming the file.
DAMAGED = {
    "dims_disagree_with_data": ([fc([legacy_blob(dims=(1, 1, 3, 3))])], "layer 1 (fc7)"),
    "negative_dim": ([fc([legacy_blob(dims=(1, 1, -2, 3))])], "layer 1 (fc7)"),
    "absurd_dims": ([fc([cf.blob(WEIGHT, legacy=False, dims=(2**62, 2**62))], legacy=False)], "layer 1 (fc7)"),
    "more_dims_than_caffe_allows": ([fc([cf.blob(WEIGHT, legacy=False, dims=(1,) * 40)], legacy=False)],
                                    "layer 1 (fc7)"),
    "weight_of_the_wrong_rank": ([fc([cf.blob(WEIGHT.ravel(), legacy=False)], legacy=False)], "layer 1 (fc7)"),
    "no_floats": ([fc([cf.varint_field(3, 2) + cf.varint_field(4, 3)])], "layer 1 (fc7)"),
    "doubles": ([fc([legacy_blob() + cf.message_field(8, np.zeros(6).tobytes())])], "layer 1 (fc7)"),
    "floats_in_two_pieces": ([fc([legacy_blob() + cf.floats_field(5, floats(1))])], "layer 1 (fc7)"),
    "floats_not_whole": ([fc([cf.varint_field(3, 2) + cf.varint_field(4, 3) + cf.message_field(5, bytes(7))])],
                         "layer 1 (fc7)"),
    "three_blobs": ([fc([legacy_blob(), legacy_blob(floats(2)), legacy_blob(floats(2))])], "layer 1 (fc7)"),
    "blobs_on_another_type": ([fc([legacy_blob(floats(2, 1, 1, 1))], name="pool1", type_="Pooling")],
                              "layer 1 (pool1)"),
    "two_layers_of_one_name": ([fc([legacy_blob()]), fc([legacy_blob()])], "layer 2 (fc7)"),
    "blobs_without_a_name": ([cf.message_field(2, cf.varint_field(5, 14) + cf.message_field(6, legacy_blob()))],
                             "layer 1"),
    "name_not_utf8": ([cf.message_field(2, cf.message_field(4, b"\xff\xfe"))], "layer 1"),
    "v0_format": ([cf.message_field(2, cf.message_field(1, cf.text_field(1, "conv1")))], "layer 1"),
    "both_formats": ([fc([legacy_blob()]), fc([cf.blob(WEIGHT, legacy=False)], name="fc8", legacy=False)],
                     "layer 2 (fc8)"),
    "group_wire_type": ([cf.message_field(2, cf.text_field(4, "conv2") + cf.key(9, 3))], "layer 1 (conv2)"),
    "varint_past_the_end": ([fc([legacy_blob()]), b"\xff"], "layer 2, after fc7"),
    "varint_of_eleven_bytes": ([fc([legacy_blob()]), cf.key(2, 2) + b"\xff" * 10 + b"\x01"], "layer 2, after fc7"),
    "length_past_the_end": ([fc([legacy_blob()]), cf.key(2, 2) + cf.varint(10**12) + b"\x00"], "layer 2, after fc7"),
    "blob_length_past_its_layer": ([cf.message_field(2, cf.text_field(4, "fc9") + cf.key(6, 2) + cf.varint(10**9))],
                                   "layer 1 (fc9)"),
    "field_numbered_zero": ([cf.key(0, 0) + b"\x01"], "layer 1"),
    "empty": ([], "empty"),
    "no_layer_with_blobs": ([cf.layer("data", "Data", []), cf.layer("relu", "ReLU", [])], "no Convolution"),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_a_damaged_file_is_one_line_naming_the_file_and_the_layer(tmp_path, case):
    fields, where = DAMAGED[case]
    path = cf.write_net(tmp_path / "damaged.caffemodel", fields)
    with pytest.raises(UserError) as error:
        with tensors.opened(path):
            pass
    assert_one_line(error, str(path), where)
