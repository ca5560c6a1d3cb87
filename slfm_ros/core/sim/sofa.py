"""Read and write measured HRIR sets in the SOFA format (AES69), convention SimpleFreeFieldHRIR.

SOFA files are netCDF-4 files, i.e. HDF5 underneath; h5py reads and writes them. Only the
SimpleFreeFieldHRIR convention is accepted: one listener, two receivers (ears), M source
directions, FIR data ``Data.IR`` of shape (M, 2, N).

Directions: SOFA spherical source positions are (azimuth deg counter-clockwise from the front,
elevation deg up, distance m), the same rotation sense as REP-103. ``SofaHrirSet`` stores them
as (azimuth rad wrapped to [-pi, pi), elevation rad in [-pi/2, pi/2], distance m): elevations
beyond +-90 deg (grids that run over the top to the back) are folded onto the same direction.

Ears: which channel of ``Data.IR`` is the left ear is decided from the responses (``ear_order``:
level and first arrival for lateral sources), because the ``ReceiverPosition`` of several widely
used collections contradicts their own data; a disagreement is logged as a warning that names
the file and what its metadata says. ``Data.Delay`` (samples, one pair per file or per
measurement, fractional allowed) is applied to the responses.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import numpy.typing as npt

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.sim.ear_order import first_channel_is_left, measure_ear_cues

_log = logging.getLogger(__name__)

CONVENTION = "SimpleFreeFieldHRIR"
_NETCDF_DIM_NAME = "This is a netCDF dimension but not a netCDF variable."


@dataclass(frozen=True, eq=False)
class SofaHrirSet:
    """A measured HRIR set.

    ir: (M, 2, N) float32, channel 0 = left ear.
    source_positions: (M, 3) float64 = (azimuth rad in [-pi, pi), elevation rad, distance m),
        head-relative (REP-103: azimuth counter-clockwise from the nose, left positive).
    sample_rate: Hz.
    """

    ir: npt.NDArray[np.float32]
    source_positions: npt.NDArray[np.float64]
    sample_rate: float
    title: str = ""

    def __post_init__(self) -> None:
        ir = np.asarray(self.ir, dtype=np.float32)
        pos = np.asarray(self.source_positions, dtype=np.float64)
        if ir.ndim != 3 or ir.shape[1] != 2 or ir.shape[0] < 1 or ir.shape[2] < 1:
            raise InputFormatError(f"HRIR data must be (M, 2, N), got shape {ir.shape}")
        if pos.shape != (ir.shape[0], 3):
            raise InputFormatError(
                f"source_positions must be (M, 3) = ({ir.shape[0]}, 3), got {pos.shape}"
            )
        if not self.sample_rate > 0:
            raise InputFormatError(f"sample_rate must be positive, got {self.sample_rate}")
        object.__setattr__(self, "ir", ir)
        object.__setattr__(self, "source_positions", pos)


def _attr_str(value: object) -> str:
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace").strip("\x00").strip()
    return str(value).strip()


def _spherical_deg_to_cartesian(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    az, el = np.radians(values[:, 0]), np.radians(values[:, 1])
    r = values[:, 2]
    return np.stack([r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el)], 1)


def _cartesian_to_spherical(xyz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    r = np.linalg.norm(xyz, axis=1)
    az = np.arctan2(xyz[:, 1], xyz[:, 0])
    el = np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1]))
    return np.stack([az, el, r], axis=1)


def _spherical_deg_to_rad(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(azimuth rad, elevation rad in [-pi/2, pi/2], distance) of SOFA spherical rows.

    Elevations beyond +-90 deg are folded onto the direction they point at; the azimuth of an
    exact pole keeps its stored value (it does not matter there).
    """
    unit = np.column_stack([values[:, :2], np.ones(values.shape[0])])
    out = _cartesian_to_spherical(_spherical_deg_to_cartesian(unit))
    out[:, 2] = values[:, 2]
    pole = np.abs(np.cos(out[:, 1])) < 1e-9
    out[pole, 0] = np.radians(values[pole, 0])
    return out


def _rows(ds: h5py.Dataset) -> npt.NDArray[np.float64]:
    """(rows, 3) coordinates of a position variable (dims XC, XCI or XCM: first of the last)."""
    values = np.asarray(ds[()], dtype=np.float64)
    if values.ndim == 3:
        values = values[:, :, 0]
    return values.reshape(values.shape[0], -1)[:, :3] if values.ndim >= 2 else values[None, :3]


def _positions(ds: h5py.Dataset, name: str, path: Path) -> npt.NDArray[np.float64]:
    """Read a (rows, 3) position variable as (azimuth rad, elevation rad, distance m)."""
    values = _rows(ds)
    kind = _attr_str(ds.attrs.get("Type", "cartesian")).lower()
    if kind == "spherical":
        return _spherical_deg_to_rad(values)
    if kind == "cartesian":
        return _cartesian_to_spherical(values)
    raise InputFormatError(f"{path}: {name} has Type {kind!r}; expected 'spherical' or 'cartesian'")


def _receiver_metadata(f: h5py.File, path: Path) -> tuple[str, str]:
    """Which ear ReceiverPosition puts first by its coordinates alone ("left", "right", or
    "unknown" when it does not tell: missing, not two rows, both on the median plane), and
    what it says, for messages."""
    if "ReceiverPosition" not in f:
        return "unknown", "no ReceiverPosition"
    recv = _positions(f["ReceiverPosition"], "ReceiverPosition", path)
    if recv.shape[0] != 2:
        return "unknown", f"{recv.shape[0]} ReceiverPosition rows"
    y = recv[:, 2] * np.cos(recv[:, 1]) * np.sin(recv[:, 0])
    said = (
        f"ReceiverPosition puts the first receiver at y = {y[0]:+.3g} m, "
        f"the second at {y[1]:+.3g} m"
    )
    if abs(y[0] - y[1]) < 1e-6:
        return "unknown", said
    first = "left" if y[0] > y[1] else "right"
    return first, f"{said} (the {first} ear first)"


def _apply_delays(
    ir: npt.NDArray[np.float64], ds: h5py.Dataset, path: Path
) -> npt.NDArray[np.float64]:
    """Responses delayed by Data.Delay (samples; dims IR or MR), lengthened to hold them."""
    m, r, n = ir.shape
    delay = np.asarray(ds[()], dtype=np.float64)
    if delay.size not in (r, m * r):
        raise InputFormatError(
            f"{path}: Data.Delay has shape {delay.shape}; expected (1, {r}) or ({m}, {r})"
        )
    if not np.all(np.isfinite(delay)):
        raise InputFormatError(f"{path}: Data.Delay holds non-finite values")
    delay = np.broadcast_to(delay.reshape(-1, r), (m, r))
    delay = delay - min(0.0, float(delay.min()))  # only relative delays matter
    if not np.any(delay):
        return ir
    if np.all(delay == np.rint(delay)):
        shifts = delay.astype(int)
        out = np.zeros((m, r, n + int(shifts.max())))
        for i, j in np.ndindex(m, r):
            out[i, j, shifts[i, j] : shifts[i, j] + n] = ir[i, j]
        return out
    length = n + int(math.ceil(float(delay.max())))
    n_fft = 1 << int(math.ceil(math.log2(2 * length)))
    omega = 2.0 * math.pi * np.arange(n_fft // 2 + 1) / n_fft
    spectra = np.fft.rfft(ir, n=n_fft, axis=-1) * np.exp(-1j * omega * delay[:, :, None])
    return np.fft.irfft(spectra, n=n_fft, axis=-1)[:, :, :length]


def _left_first(
    ir: npt.NDArray[np.float64],
    sources: npt.NDArray[np.float64],
    rate: float,
    f: h5py.File,
    path: Path,
) -> bool:
    """Whether the first channel is the left ear: the acoustics decide (module docstring)."""
    from_metadata, said = _receiver_metadata(f, path)
    cues = measure_ear_cues(ir, sources, rate)
    if cues.n_lateral == 0:
        # A median-plane set cannot tell its ears apart; SOFA's metadata is all there is.
        return from_metadata != "right"
    measured = first_channel_is_left(cues, str(path))
    if from_metadata != "unknown" and (from_metadata == "left") != measured:
        _log.warning(
            "%s: %s, but the responses say the first channel is the %s ear, %s; using the %s "
            "channel as the left ear (the receiver metadata or the azimuth sense of the file is "
            "mirrored)",
            path,
            said,
            "left" if measured else "right",
            cues.describe(),
            "first" if measured else "second",
        )
    return measured


def read_sofa(path: str | Path) -> SofaHrirSet:
    """Read a SimpleFreeFieldHRIR SOFA file.

    Raises InputFormatError for a missing file, a file that is not HDF5/netCDF-4, another SOFA
    convention, a receiver count other than 2, inconsistent sample rates, or responses whose
    two channels do not behave as two ears (``ear_order``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"SOFA file not found: {path}; give the path of a .sofa file")
    if not h5py.is_hdf5(path):
        raise InputFormatError(
            f"{path} is not a SOFA file: SOFA files are netCDF-4/HDF5 and this one is not"
        )
    with h5py.File(path, "r") as f:
        conventions = _attr_str(f.attrs.get("Conventions", ""))
        if conventions != "SOFA":
            raise InputFormatError(
                f"{path}: global attribute Conventions is {conventions!r}, expected 'SOFA'"
            )
        found = _attr_str(f.attrs.get("SOFAConventions", ""))
        if found != CONVENTION:
            raise InputFormatError(
                f"{path}: SOFA convention is {found!r}, expected {CONVENTION!r} (free-field "
                "HRIRs of one listener); convert the file or use a SimpleFreeFieldHRIR set"
            )
        for var in ("Data.IR", "Data.SamplingRate", "SourcePosition"):
            if var not in f:
                raise InputFormatError(f"{path}: required SOFA variable {var} is missing")
        ir = np.asarray(f["Data.IR"][()], dtype=np.float64)
        if ir.ndim != 3 or ir.shape[1] != 2:
            raise InputFormatError(
                f"{path}: Data.IR must be (M, R=2, N), got shape {ir.shape}; "
                "SimpleFreeFieldHRIR files have exactly two receivers (ears)"
            )
        rates = np.unique(np.asarray(f["Data.SamplingRate"][()], dtype=np.float64))
        if rates.size != 1 or not rates[0] > 0:
            raise InputFormatError(f"{path}: expected one positive sample rate, got {rates}")
        sources = _positions(f["SourcePosition"], "SourcePosition", path)
        if sources.shape[0] == 1 and ir.shape[0] > 1:
            raise InputFormatError(
                f"{path}: one SourcePosition for {ir.shape[0]} measurements; need one per IR"
            )
        if sources.shape[0] != ir.shape[0]:
            raise InputFormatError(
                f"{path}: {sources.shape[0]} source positions for {ir.shape[0]} IRs"
            )
        if "ListenerView" in f:
            # Source azimuths are measured from where the listener looks.
            view = _positions(f["ListenerView"], "ListenerView", path)
            sources[:, 0] -= view[:, 0]
        if "Data.Delay" in f:
            ir = _apply_delays(ir, f["Data.Delay"], path)
        if not np.all(np.isfinite(ir)):
            raise InputFormatError(f"{path}: Data.IR holds non-finite values")
        sources[:, 0] = wrap_angle(sources[:, 0])
        if not _left_first(ir, sources, float(rates[0]), f, path):
            ir = ir[:, ::-1, :]
        title = _attr_str(f.attrs.get("Title", ""))
    return SofaHrirSet(ir.astype(np.float32), sources, float(rates[0]), title)


def _set_text_attr(obj: h5py.File | h5py.Dataset, name: str, value: str) -> None:
    # Fixed-length ASCII is what netCDF-C writes for text attributes (NC_CHAR).
    obj.attrs.create(name, np.bytes_(value.encode("ascii", errors="replace")))


def write_sofa(path: str | Path, hrir_set: SofaHrirSet, title: str | None = None) -> None:
    """Write ``hrir_set`` as a SimpleFreeFieldHRIR SOFA 1.0 file (netCDF-4 layout via HDF5).

    Dimensions are HDF5 dimension scales with netCDF-4 names, text attributes are fixed-length
    ASCII, numeric variables are float64 as the SOFA specification asks.
    """
    path = Path(path)
    m, r, n = hrir_set.ir.shape
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    src = np.empty((m, 3))
    src[:, 0] = np.mod(np.degrees(hrir_set.source_positions[:, 0]), 360.0)
    src[:, 1] = np.degrees(hrir_set.source_positions[:, 1])
    src[:, 2] = hrir_set.source_positions[:, 2]
    attrs = {
        "Conventions": "SOFA",
        "Version": "1.0",
        "SOFAConventions": CONVENTION,
        "SOFAConventionsVersion": "1.0",
        "APIName": "slfm_ros",
        "APIVersion": "1.0",
        "DataType": "FIR",
        "RoomType": "free field",
        "Title": title if title is not None else (hrir_set.title or "HRIR set"),
        "DateCreated": now,
        "DateModified": now,
        "AuthorContact": "",
        "Organization": "",
        "License": "No license provided, ask the author for permission",
        "ApplicationName": "slfm_ros",
        "ApplicationVersion": "1.0",
        "Comment": "",
        "History": "",
        "References": "",
        "Origin": "",
        "DatabaseName": "",
        "ListenerShortName": "",
    }
    dims = {"M": m, "R": r, "N": n, "E": 1, "I": 1, "C": 3}
    with h5py.File(path, "w") as f:
        for key, value in attrs.items():
            _set_text_attr(f, key, value)
        scales: dict[str, h5py.Dataset] = {}
        for dim_id, (dim, size) in enumerate(dims.items()):
            ds = f.create_dataset(dim, shape=(size,), dtype="f4")
            ds.make_scale(f"{_NETCDF_DIM_NAME}{size:10d}")
            ds.attrs.create("_Netcdf4Dimid", np.int32(dim_id))
            scales[dim] = ds

        def variable(name: str, data: npt.ArrayLike, dim_names: str, **text: str) -> h5py.Dataset:
            ds = f.create_dataset(name, data=np.asarray(data, dtype=np.float64))
            for axis, dim in enumerate(dim_names):
                ds.dims[axis].attach_scale(scales[dim])
            for key, value in text.items():
                _set_text_attr(ds, key, value)
            return ds

        variable("ListenerPosition", [[0.0, 0.0, 0.0]], "IC", Type="cartesian", Units="metre")
        variable("ListenerUp", [[0.0, 0.0, 1.0]], "IC", Type="cartesian", Units="metre")
        variable("ListenerView", [[1.0, 0.0, 0.0]], "IC", Type="cartesian", Units="metre")
        ears = np.array([[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]]).reshape(2, 3, 1)
        variable("ReceiverPosition", ears, "RCI", Type="cartesian", Units="metre")
        variable("SourcePosition", src, "MC", Type="spherical", Units="degree, degree, metre")
        variable("EmitterPosition", np.zeros((1, 3, 1)), "ECI", Type="cartesian", Units="metre")
        variable("Data.IR", hrir_set.ir, "MRN")
        variable("Data.SamplingRate", [float(hrir_set.sample_rate)], "I", Units="hertz")
        variable("Data.Delay", np.zeros((1, r)), "IR")


def horizontal_ring(
    ir: npt.NDArray[np.floating], azimuths: npt.ArrayLike, sample_rate: float, distance_m: float
) -> SofaHrirSet:
    """Convenience: an HRIR set measured on the horizontal plane at ``azimuths`` (radians)."""
    az = np.asarray(azimuths, dtype=np.float64)
    positions = np.stack([wrap_angle(az), np.zeros_like(az), np.full_like(az, distance_m)], 1)
    return SofaHrirSet(np.asarray(ir, dtype=np.float32), positions, float(sample_rate))


__all__ = ["CONVENTION", "SofaHrirSet", "horizontal_ring", "read_sofa", "write_sofa"]
