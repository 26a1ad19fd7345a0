"""BVLC Caffe's `.caffemodel` files (bvlc_alexnet, bvlc_googlenet) as Tensors, read without Caffe or protobuf,
trusting nothing in the file: a caffe.NetParameter (BVLC/caffe src/caffe/proto/caffe.proto) whose layers are
field 2 (V1LayerParameter, BVLC's 2014 files: name 4, type 5 an enum, blobs 6) or field 100 (LayerParameter:
name 1, type 2 a string, blobs 7). A BlobProto's dims are the legacy num, channels, height, width (fields
1-4) or a BlobShape (field 7, dim field 1); its floats are `data` (field 5, packed, or a field each).
Opening walks the file once through a memory map, skipping the floats without touching their pages
(milliseconds); a lookup reads them into the tensor's new array with a file read, never through the map,
whose pages once read would stay in the process: a load holds one tensor at a time.

Keys are `<layer name>.weight` (blob 0) and `<layer name>.bias` (blob 1), names as in the file
(`conv1/7x7_s2`), in Caffe's layouts: Convolution weight (out, in/group, kh, kw), InnerProduct weight
(out, in), bias (out,). Legacy dims count from the end of the shape (blob.cpp, Blob::ShapeEquals: "legacy
parameter blobs were indexed from the end"; UpgradeV1LayerParameter copies blobs as they are), so Caffe
stored an InnerProduct weight (1, 1, out, in) and a bias (1, 1, 1, out): leading 1s dropped.

Refused in one line naming the file and the layer: a number, length or float past its message or the file;
dims not positive, not of the role's rank, or not the count of floats; double_data (field 8, only a
Blob<double>'s); over two blobs; blobs on other types; two layers of one name; V1 and new layers together
(as upgrade_proto.cpp refuses); Caffe's V0 format; no layer with blobs. Protobuf has no end marker: a file
cut exactly between two layers is a valid shorter net, missing tensors.
"""

import contextlib
import dataclasses
import math
import mmap
import pathlib
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

import numpy as np

from runner.mistakes.errors import UserError
from runner.weights.tensor_map import Tensors

# Protobuf's wire types (protobuf.dev/programming-guides/encoding); groups (3, 4) are not in caffe.proto.
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
_FIXED_SIZES = {FIXED64: 8, FIXED32: 4}
_FLOAT_SIZE = 4
_ONE_FIELD_FLOAT_TAG = b"\x2d"  # BlobProto data (field 5) as a fixed32 field of its own: 5 << 3 | FIXED32
_ONE_FIELD_STRIDE = 5  # that tag's byte, then the float
_RUN_CHUNK = 1 << 20  # such floats counted at once
_MAX_AXES = 32  # Caffe's kMaxBlobAxes (include/caffe/blob.hpp)
_LAYER_FIELDS = (2, 100)  # NetParameter's V1 `layers` and new `layer`
_V1_TYPES = {4: "Convolution", 14: "InnerProduct"}  # the enum's, as UpgradeV1LayerType names them
_WEIGHT_RANKS = {"Convolution": 4, "InnerProduct": 2}  # a bias is (out,)
_ROLES = ("weight", "bias")  # blobs 0 and 1


class _Damage(Exception):
    """What is wrong with the bytes at hand (the walk adds where); `cut`: (message, field) ran past it."""

    def __init__(self, message: str, cut: tuple["_Fields", int] | None = None):
        super().__init__(message)
        self.cut = cut


class _Field(NamedTuple):
    number: int
    wire_type: int
    value: int  # a varint's
    start: int  # where a length-delimited or fixed field's bytes are in the file
    stop: int


class _Fields:
    """The fields of one message, the file's bytes [start, end), in order; iterating skips each
    field's bytes, so an unknown field is passed over by ignoring it."""

    def __init__(self, buffer, start: int, end: int, of: str):
        self.buffer, self.position, self.end, self.of = buffer, start, end, of

    def __iter__(self) -> Iterator[_Field]:
        while self.position < self.end:
            yield self._field()

    def _field(self) -> _Field:
        key = self.varint()
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise _Damage(f"a field numbered 0 at byte {self.position} (not protobuf)")
        if wire_type == VARINT:
            return _Field(number, wire_type, self.varint(), self.position, self.position)
        if wire_type not in (LENGTH_DELIMITED, *_FIXED_SIZES):
            raise _Damage(f"field {number} has wire type {wire_type}, which caffe.proto never writes")
        length = self.varint() if wire_type == LENGTH_DELIMITED else _FIXED_SIZES[wire_type]
        if length > self.end - self.position:  # checked before anything trusts the length
            raise _Damage(f"its {length} bytes from byte {self.position} run past the end of {self.of} "
                          f"(byte {self.end})", cut=(self, number))
        self.position += length
        return _Field(number, wire_type, 0, self.position - length, self.position)

    def varint(self) -> int:
        value = 0
        for shift in range(0, 70, 7):
            if self.position >= self.end:
                raise _Damage(f"a number runs past the end of {self.of}")
            byte = self.buffer[self.position]
            self.position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value & 0xFFFF_FFFF_FFFF_FFFF
        raise _Damage(f"a number at byte {self.position - 10} is longer than protobuf's 10 bytes")

    def inner(self, field: _Field, of: str) -> "_Fields":
        _expect(field, LENGTH_DELIMITED, of)
        return _Fields(self.buffer, field.start, field.stop, of)


class _Floats(NamedTuple):
    offset: int  # of the first float in the file
    count: int
    stride: int  # bytes from one float to the next


_Tensor = tuple[tuple[int, ...], _Floats]  # Caffe's natural shape, the floats


@dataclasses.dataclass
class _Blob:
    legacy_dims: dict[int, int] = dataclasses.field(default_factory=dict)  # those of fields 1-4 present
    shape_dims: list[int] = dataclasses.field(default_factory=list)
    floats: _Floats | None = None


@dataclasses.dataclass
class _Layer:
    number: int  # counted from 1 over the file's layers, those without blobs too
    name: str = ""
    type: str = ""
    blobs: list[_Blob] = dataclasses.field(default_factory=list)


def _expect(field: _Field, wire_type: int, what: str) -> None:
    if field.wire_type != wire_type:
        raise _Damage(f"{what} (field {field.number}) has wire type {field.wire_type}, not {wire_type}")


def _signed(value: int) -> int:
    """int32 and int64 fields are two's complement varints: a negative one is 10 bytes."""
    return value - (1 << 64) if value >> 63 else value


def _text(fields: _Fields, field: _Field, what: str) -> str:
    _expect(field, LENGTH_DELIMITED, what)
    try:
        return bytes(fields.buffer[field.start:field.stop]).decode("utf8")
    except UnicodeDecodeError:
        raise _Damage(f"{what} is not UTF-8 text") from None


def _blob_floats(fields: _Fields, field: _Field) -> _Floats:
    """BlobProto data (field 5): packed, or a fixed32 field a float, whose run of fields is skipped
    here, its tags checked a chunk at a time by a strided slice, not a Python loop over millions."""
    if field.wire_type == LENGTH_DELIMITED:
        if (field.stop - field.start) % _FLOAT_SIZE:
            raise _Damage(f"its data is {field.stop - field.start} bytes, not whole floats")
        return _Floats(field.start, (field.stop - field.start) // _FLOAT_SIZE, _FLOAT_SIZE)
    _expect(field, FIXED32, "its data")
    count, run = 1, _RUN_CHUNK
    while run == _RUN_CHUNK:
        records = min(_RUN_CHUNK, (fields.end - fields.position) // _ONE_FIELD_STRIDE)
        tags = fields.buffer[fields.position:fields.position + _ONE_FIELD_STRIDE * records:_ONE_FIELD_STRIDE]
        run = len(tags) - len(tags.lstrip(_ONE_FIELD_FLOAT_TAG))
        count, fields.position = count + run, fields.position + _ONE_FIELD_STRIDE * run
    return _Floats(field.start, count, _ONE_FIELD_STRIDE)


def _shape_dims(fields: _Fields, dims: list[int]) -> None:
    """BlobShape dim (field 1), int64s packed or a field each, onto `dims`, never more than Caffe's."""
    for field in fields:
        if field.number == 1 and field.wire_type == VARINT:
            dims.append(_signed(field.value))
        elif field.number == 1:
            packed = fields.inner(field, "its packed dims")
            while packed.position < packed.end and len(dims) <= _MAX_AXES:
                dims.append(_signed(packed.varint()))
        if len(dims) > _MAX_AXES:
            raise _Damage(f"a blob has more than Caffe's {_MAX_AXES} dims")


def _blob(fields: _Fields) -> _Blob:
    blob = _Blob()
    for field in fields:
        if field.number in (1, 2, 3, 4):  # num, channels, height, width
            _expect(field, VARINT, "a legacy dim")
            blob.legacy_dims[field.number] = _signed(field.value)
        elif field.number == 7:
            _shape_dims(fields.inner(field, "its shape"), blob.shape_dims)
        elif field.number == 5 and blob.floats is not None:
            raise _Damage("its data comes in several pieces; Caffe writes one")
        elif field.number == 5:
            blob.floats = _blob_floats(fields, field)
        elif field.number == 8:
            raise _Damage("its blob holds doubles (BlobProto double_data), which only a Blob<double> writes")
    return blob


def _layer(fields: _Fields, layer: _Layer, v1: bool) -> None:
    """V1LayerParameter (name 4, type 5 an enum, blobs 6) or LayerParameter (name 1, type 2, blobs 7)."""
    name, type_, blobs = (4, 5, 6) if v1 else (1, 2, 7)
    for field in fields:
        if field.number == name:
            layer.name = _text(fields, field, "its name")
        elif field.number == type_ and v1:
            _expect(field, VARINT, "its type")
            layer.type = _V1_TYPES.get(field.value, f"V1 enum {field.value}")
        elif field.number == type_:
            layer.type = _text(fields, field, "its type")
        elif field.number == blobs and len(layer.blobs) == len(_ROLES):
            raise _Damage("it has more than two blobs (a weight and a bias)")
        elif field.number == blobs:
            layer.blobs.append(_blob(fields.inner(field, "its blob")))
        elif field.number == 1 and v1:
            raise _Damage("it is in Caffe's V0 format (V1LayerParameter field 1); "
                          "upgrade the file with Caffe's upgrade_net_proto_binary")


def _natural_shape(blob: _Blob, rank: int, what: str) -> tuple[int, ...]:
    dims = [blob.legacy_dims.get(number, 0) for number in (1, 2, 3, 4)] if blob.legacy_dims else blob.shape_dims
    while blob.legacy_dims and len(dims) > rank and dims[0] == 1:  # counted from the end
        dims.pop(0)
    if not all(dim > 0 for dim in dims) or len(dims) != rank:
        raise _Damage(f"{what} has dims {tuple(dims)}, not {rank} positive ones")
    count = 0 if blob.floats is None else blob.floats.count
    if math.prod(dims) != count:
        raise _Damage(f"{what} has dims {tuple(dims)} ({math.prod(dims)} floats) but {count} floats")
    return tuple(dims)


def _tensors_of(layer: _Layer, found: dict[str, _Tensor]) -> dict[str, _Tensor]:
    """The layer's `<name>.weight` and `<name>.bias`."""
    if layer.type not in _WEIGHT_RANKS:
        raise _Damage(f"it is of type {layer.type!r} and has blobs; only Convolution and InnerProduct "
                      "layers' are read")
    if not layer.name or f"{layer.name}.weight" in found:
        raise _Damage("it has blobs but no name" if not layer.name else "a layer before it has its name")
    ranks = (_WEIGHT_RANKS[layer.type], 1)
    return {f"{layer.name}.{role}": (_natural_shape(blob, rank, f"its {role} (blob {index})"), blob.floats)
            for index, (role, rank, blob) in enumerate(zip(_ROLES, ranks, layer.blobs))}


def _walk(buffer, size: int) -> dict[str, _Tensor]:
    """Every tensor of the net's layers, its floats not read. Damage between two layers is told as in
    the next one; a layer cut by the file's end is named if its name is in the bytes left."""
    net = _Fields(buffer, 0, size, "the file")
    found, formats, previous, layer = {}, set(), "", _Layer(1)
    try:
        for field in net:
            if field.number in _LAYER_FIELDS:
                formats.add(field.number)
                _layer(net.inner(field, "its layer"), layer, v1=field.number == 2)
                if len(formats) > 1:
                    raise _Damage("the file has layers in both V1 (field 2) and new (field 100) formats")
                found |= _tensors_of(layer, found) if layer.blobs else {}
                previous, layer = layer.name, _Layer(layer.number + 1)
    except _Damage as damage:
        if damage.cut is not None and damage.cut[0] is net and damage.cut[1] in _LAYER_FIELDS:
            with contextlib.suppress(_Damage):
                _layer(_Fields(buffer, net.position, size, "the file"), layer, v1=damage.cut[1] == 2)
        named = f" ({layer.name})" if layer.name else f", after {previous}" if previous else ""
        raise _Damage(f"layer {layer.number}{named}: {damage}") from None
    return found


def _read(handle: BinaryIO, path: pathlib.Path, key: str, tensor: _Tensor) -> np.ndarray:
    """One tensor's little-endian floats, packed ones read straight into its array, others via their span."""
    shape, floats = tensor
    array = np.empty(floats.count, dtype="<f4")
    span = floats.stride * (floats.count - 1) + _FLOAT_SIZE
    target = array if floats.stride == _FLOAT_SIZE else np.empty(span, dtype=np.uint8)
    handle.seek(floats.offset)
    if handle.readinto(memoryview(target).cast("B")) != span:
        raise UserError(f"weights file {path} changed while it was read: {key}'s floats are gone")
    if target is not array:
        array[:] = np.ndarray((floats.count,), dtype="<f4", buffer=target, strides=(floats.stride,))
    return array.astype(np.float32, copy=False).reshape(shape)


@contextlib.contextmanager
def opened(path: str | pathlib.Path) -> Iterator[Tensors]:
    """The file's tensors, readable while the block runs."""
    path = pathlib.Path(path)
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise UserError(f"weights file {path} cannot be read: {error.strerror}") from None
    with handle:
        if handle.seek(0, 2) == 0:
            raise UserError(f"weights file {path} is empty, not a Caffe model")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            try:
                found = _walk(mapped, len(mapped))
            except _Damage as damage:
                raise UserError(f"weights file {path} is not a readable Caffe model: {damage}") from None
        if not found:
            raise UserError(f"weights file {path} has no Convolution or InnerProduct layer with weights")
        yield Tensors({key: shape for key, (shape, _) in found.items()},
                              lambda key: _read(handle, path, key, found[key]))
