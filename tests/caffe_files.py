"""Writes Caffe `.caffemodel` files for tests, as BVLC's Caffe wrote them, without Caffe or protobuf.

A file is one caffe.NetParameter (BVLC/caffe src/caffe/proto/caffe.proto), its fields in number order
as Caffe's C++ protobuf serializes them. The 2014 layout (legacy=True, bvlc_alexnet's and
bvlc_googlenet's) has V1LayerParameter `layers` (NetParameter field 2: name 4, type 5 an enum,
blobs 6) and legacy blob dims (BlobProto num 1, channels 2, height 3, width 4) counted from the end,
so an InnerProduct weight (out, in) is stored (1, 1, out, in) and a bias (1, 1, 1, out); the new
layout has LayerParameter `layer` (field 100: name 1, type 2 a string, blobs 7) and BlobShape dims
(BlobProto field 7, its dim field 1). Floats are BlobProto data (field 5), packed.

Around the weights every file carries what a reader must skip: the net's name, a Data layer and a
ReLU layer without blobs, each layer's bottom, top and parameters, and one field no caffe.proto has
(a fixed64), as a newer writer could add; with diffs=True each blob's diff too (BlobProto field 6,
which Caffe saves only with snapshot_diff, so BVLC's files have none).
"""

import pathlib

import numpy as np

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
V1_TYPES = {"Data": 5, "Convolution": 4, "InnerProduct": 14, "ReLU": 18, "Pooling": 17}
TYPES_BY_RANK = {4: "Convolution", 2: "InnerProduct"}
UNKNOWN_FIELD = 999  # in no caffe.proto message


def varint(value: int) -> bytes:
    """Protobuf's base-128 varint; a negative int32/int64 as its 64-bit two's complement (10 bytes)."""
    value &= (1 << 64) - 1
    encoded = bytearray()
    while value >= 0x80:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(encoded + bytes([value]))


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def varint_field(number: int, value: int) -> bytes:
    return key(number, VARINT) + varint(value)


def message_field(number: int, payload: bytes) -> bytes:
    return key(number, LENGTH_DELIMITED) + varint(len(payload)) + payload


def text_field(number: int, text: str) -> bytes:
    return message_field(number, text.encode("utf8"))


def float_field(number: int, value: float) -> bytes:
    """A float written as a field of its own (proto2's repeated floats without [packed = true])."""
    return key(number, FIXED32) + np.float32(value).astype("<f4").tobytes()


def floats_field(number: int, values: np.ndarray) -> bytes:
    """Packed floats, as BlobProto data and diff are ([packed = true])."""
    return message_field(number, np.ascontiguousarray(values, dtype="<f4").tobytes())


def unknown_field() -> bytes:
    return key(UNKNOWN_FIELD, FIXED64) + bytes(8)


def legacy_dims(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Caffe's four legacy dims of a blob, counted from the end: (out, in) -> (1, 1, out, in)."""
    return (1,) * (4 - len(shape)) + tuple(shape)


def blob(array: np.ndarray, *, legacy: bool = True, dims: tuple[int, ...] | None = None,
         one_field_each: bool = False, diff: bool = False) -> bytes:
    """A BlobProto of the array as stored (legacy: reshaped by as_written first); `dims`, when given,
    written instead of its shape's (damage)."""
    dims = tuple(array.shape) if dims is None else dims
    data = (b"".join(float_field(5, value) for value in array.ravel()) if one_field_each
            else floats_field(5, array.ravel()))
    data += floats_field(6, np.zeros(array.size)) if diff else b""
    if legacy:
        return b"".join(varint_field(number, dim) for number, dim in zip((1, 2, 3, 4), dims)) + data
    return data + message_field(7, message_field(1, b"".join(varint(dim) for dim in dims)))


def layer(name: str, type_: str, blobs: list[bytes], *, legacy: bool = True) -> bytes:
    """One whole NetParameter field: a V1 `layers` (2) entry or a new `layer` (100) entry."""
    if legacy:
        fields = (text_field(2, "bottom"), text_field(3, name), text_field(4, name),
                  varint_field(5, V1_TYPES[type_]), *(message_field(6, one) for one in blobs),
                  *(float_field(7, 1.0) for _ in blobs),  # blobs_lr: proto2 floats, a field each
                  message_field(10, varint_field(1, 8)), unknown_field())  # convolution_param's num_output
        return message_field(2, b"".join(fields))
    fields = (text_field(1, name), text_field(2, type_), text_field(3, "bottom"), text_field(4, name),
              *(message_field(6, float_field(3, 1.0)) for _ in blobs), *(message_field(7, one) for one in blobs),
              message_field(106, varint_field(1, 8)), unknown_field())
    return message_field(100, b"".join(fields))


def net_fields(blobs: dict[str, np.ndarray], types: dict[str, str] | None = None, *,
               legacy: bool = True, diffs: bool = False) -> list[bytes]:
    """The NetParameter's top-level fields, whole, in file order: its name, a Data layer, each layer of
    `blobs` (keys `<layer>.weight`, `<layer>.bias`, in Caffe's shapes), then a ReLU layer."""
    arrays_by_layer: dict[str, list[np.ndarray]] = {}
    for tensor_key, array in blobs.items():
        name, _, role = tensor_key.rpartition(".")
        arrays_by_layer.setdefault(name, []).insert(0 if role == "weight" else 1, array)
    types = types or {}
    weighted = [layer(name, types.get(name, TYPES_BY_RANK[arrays[0].ndim]),
                      [blob(as_written(array, legacy), legacy=legacy, diff=diffs) for array in arrays], legacy=legacy)
                for name, arrays in arrays_by_layer.items()]
    return [text_field(1, "TestNet"), layer("data", "Data", [], legacy=legacy), *weighted,
            layer("relu", "ReLU", [], legacy=legacy)]


def as_written(array: np.ndarray, legacy: bool) -> np.ndarray:
    return array.reshape(legacy_dims(array.shape)) if legacy else array


def write_caffemodel(path: str | pathlib.Path, blobs: dict[str, np.ndarray], types: dict[str, str] | None = None,
                     *, legacy: bool = True, diffs: bool = False) -> pathlib.Path:
    """A `.caffemodel` holding `blobs`, each layer's type from its weight's rank (4: Convolution,
    2: InnerProduct) unless `types` names it."""
    path = pathlib.Path(path)
    path.write_bytes(b"".join(net_fields(blobs, types, legacy=legacy, diffs=diffs)))
    return path


def write_net(path: str | pathlib.Path, fields: list[bytes]) -> pathlib.Path:
    """A `.caffemodel` of hand-made top-level fields (damaged ones included)."""
    path = pathlib.Path(path)
    path.write_bytes(b"".join(fields))
    return path
