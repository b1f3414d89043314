"""Declarative phantoms: regions made of simple solids, loaded from TOML.

A phantom is an ordered list of *regions*. Each region is a union of
*parts*; each part is one solid or the intersection of a few (so it is
convex). A later region overrides an earlier one where they overlap
(painter's order: body first, organs next, lesions last). Every region
carries an activity concentration, a material (mu at 511 keV, default CT
number, MR class and Dixon signals, :mod:`petrecon.simulate.materials`) and
optional overrides of the CT number and MR class.

Solids (all axis-aligned in the phantom's own frame; the cylinder's axis is z)::

    {type = "sphere",    centre_mm = [x, y, z], radius_mm = r}
    {type = "ellipsoid", centre_mm = [...], semi_axes_mm = [a, b, c]}
    {type = "cylinder",  centre_mm = [...], radius_mm = r (or radii_mm = [rx, ry]), length_mm = L}
    {type = "box",       centre_mm = [...], size_mm = [sx, sy, sz]}
    {type = "intersection", of = [solid, solid, ...]}

TOML file layout (see the shipped ``phantoms/*.toml``)::

    name = "nema-iec"
    description = "..."
    activity_unit = "Bq/ml"        # or "SUV" (then weight_kg and injected_activity_mbq are required)
    isotope = "F18"                # defaults for a simulation
    frame_start_s = 0.0
    duration_s = 600.0
    [parameters]                   # named numbers or booleans, overridable by the caller
    ratio = 4.0
    [choices]                      # optional: allowed values of parameters
    ratio = [4.0, 10.0]
    [pose]                         # optional: rigid placement (default: none)
    rotation_deg = [5.0, 0.0, 0.0] # about the phantom's own x, then y, then z axis (degrees)
    shift_mm = [10.0, -5.0, 0.0]   # then moved by this (mm)
    [[regions]]
    name = "sphere_37"
    material = "water"
    activity = ["background", "ratio"]   # a number, a parameter name, or a list multiplied together
    when = "glass_walls"                 # optional: include only if this boolean parameter is true
    ct_hu = 0.0                          # optional override of the material's CT number
    mr_class = "soft_tissue"             # optional override of the material's MR class
    shapes = [ {type = "sphere", ...} ]  # the union of these parts

Pose: a point ``q`` of the phantom's own frame (the coordinates its solids are
written in) lies at ``R q + shift`` in the scanner, ``R = Rz Ry Rx`` (:class:`Pose`).
Every consumer (exact line integrals, voxelisation, scatter) maps scanner points
into the phantom's frame (:meth:`PackedPhantom.to_phantom_frame`), so a tilted
phantom stays exact: chord lengths are invariant under the rigid motion.

Activity meaning: ``"Bq/ml"`` concentrations are absolute at the reference
time (``t = 0``, injection or calibration); the phantom's total activity is
its "injected" activity, and asking for another injected activity scales all
concentrations. ``"SUV"`` concentrations are ``SUV x injected / weight``
(1 g/ml tissue density, reference/quantification.md SUVbw), so they scale
with the injected activity.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from petrecon.errors import FormatError, ParameterError
from petrecon.resources import resource_dir
from petrecon.simulate.materials import MR_CLASSES, Material, get_material

ELLIPSOID, CYLINDER, BOX = 0, 1, 2
ACTIVITY_UNITS = ("Bq/ml", "SUV")


@dataclass(frozen=True)
class Pose:
    """Rigid placement of a phantom: scanner point = ``rotation() @ q + shift_mm`` for ``q`` in its own frame.

    Attributes
    ----------
    rotation_deg : tuple of float
        Rotations about the phantom's own x, y and z axes (degrees), applied in that order
        (``R = Rz Ry Rx``), about the origin of its frame.
    shift_mm : tuple of float
        Translation applied after the rotation (mm).

    Examples
    --------
    >>> Pose((0.0, 0.0, 90.0), (10.0, 0.0, 0.0)).to_scanner(np.array([1.0, 0.0, 0.0])).round(6).tolist()
    [10.0, 1.0, 0.0]
    """

    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def rotation(self) -> np.ndarray:
        """The 3 x 3 rotation matrix ``Rz Ry Rx`` (phantom frame to scanner)."""
        matrix = np.eye(3)
        for axis, angle in enumerate(np.deg2rad(self.rotation_deg)):
            c, s = np.cos(angle), np.sin(angle)
            i, j = (axis + 1) % 3, (axis + 2) % 3  # right-handed: y turns z towards x
            turn = np.eye(3)
            turn[i, i], turn[i, j], turn[j, i], turn[j, j] = c, -s, s, c
            matrix = turn @ matrix
        return matrix

    def to_scanner(self, points_mm: np.ndarray) -> np.ndarray:
        """Scanner coordinates (mm) of points ``(..., 3)`` given in the phantom's frame."""
        return np.asarray(points_mm, np.float64) @ self.rotation().T + np.asarray(self.shift_mm)


@dataclass(frozen=True)
class Solid:
    """An axis-aligned solid.

    ``half_extent_mm`` holds the ellipsoid's semi-axes, the cylinder's
    ``(rx, ry, length / 2)`` or the box's half sizes.
    """

    kind: int
    centre_mm: tuple[float, float, float]
    half_extent_mm: tuple[float, float, float]

    def contains(self, points_mm: np.ndarray) -> np.ndarray:
        """Whether each point ``(..., 3)`` lies inside (boundary included)."""
        rel = (np.asarray(points_mm, np.float64) - self.centre_mm) / self.half_extent_mm
        if self.kind == ELLIPSOID:
            return np.sum(rel * rel, axis=-1) <= 1.0
        if self.kind == CYLINDER:
            return (rel[..., 0] ** 2 + rel[..., 1] ** 2 <= 1.0) & (np.abs(rel[..., 2]) <= 1.0)
        return np.all(np.abs(rel) <= 1.0, axis=-1)

    @property
    def bounding_radius_mm(self) -> float:
        """Radius of a sphere around ``centre_mm`` that contains the solid."""
        a, b, c = self.half_extent_mm
        if self.kind == ELLIPSOID:
            return max(a, b, c)
        if self.kind == CYLINDER:
            return float(np.hypot(max(a, b), c))
        return float(np.sqrt(a * a + b * b + c * c))


@dataclass(frozen=True)
class Region:
    """A union of convex parts (each a tuple of intersected solids) with its values."""

    name: str
    parts: tuple[tuple[Solid, ...], ...]
    activity: float
    material: Material
    ct_hu: float
    mr_class: str


@dataclass(frozen=True)
class PackedPhantom:
    """Flat arrays of a phantom for the numba kernels.

    Attributes
    ----------
    solid_kind : int32 (n_solids,)
    solid_params : float64 (n_solids, 6)
        Centre and half extents.
    part_first, part_count : int32 (n_parts,)
        Solids ``part_first .. part_first + part_count - 1`` are intersected.
    part_region : int32 (n_parts,)
        Region index (painter's order) of each part.
    part_bound : float64 (n_parts, 4)
        Bounding sphere (centre, radius) of each part.
    part_box : float64 (n_parts, 6)
        Axis-aligned bounding box (low x, y, z, high x, y, z) of each part, in the phantom's frame.
    to_frame : float64 (3, 4)
        The pose's inverse: ``q = to_frame[:, :3] @ p + to_frame[:, 3]`` maps a scanner point ``p`` into
        the phantom's frame, where the solids are defined.
    """

    solid_kind: np.ndarray
    solid_params: np.ndarray
    part_first: np.ndarray
    part_count: np.ndarray
    part_region: np.ndarray
    part_bound: np.ndarray
    part_box: np.ndarray
    to_frame: np.ndarray

    def to_phantom_frame(self, points_mm: np.ndarray) -> np.ndarray:
        """Points ``(..., 3)`` in scanner mm mapped into the phantom's frame (float64)."""
        return np.asarray(points_mm, np.float64) @ self.to_frame[:, :3].T + self.to_frame[:, 3]

    def bounding_box_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners of the smallest scanner-axis-aligned box containing every part's box."""
        low, high = self.part_box[:, :3].min(axis=0), self.part_box[:, 3:].max(axis=0)
        corners = np.array([[(high if n >> a & 1 else low)[a] for a in range(3)] for n in range(8)])
        rotation = self.to_frame[:, :3].T
        scanner = (corners - self.to_frame[:, 3]) @ rotation.T
        return scanner.min(axis=0), scanner.max(axis=0)


@dataclass(frozen=True)
class Phantom:
    """A declarative phantom (see the module docstring).

    Attributes
    ----------
    name, description : str
    regions : tuple of Region
        Painter's order: later regions override earlier ones.
    activity_unit : str
        ``"Bq/ml"`` or ``"SUV"``.
    weight_kg : float or None
        Body weight for SUV phantoms.
    injected_activity_bq : float or None
        Default injected activity (SUV phantoms; Bq/ml phantoms: None = their total).
    isotope : str
    frame_start_s, duration_s : float
        Default frame start (from the reference time) and duration.
    parameters : dict
        The resolved parameters.
    pose : Pose
        Where the phantom's own frame lies in the scanner (default: coincident).
    """

    name: str
    description: str
    regions: tuple[Region, ...]
    activity_unit: str = "Bq/ml"
    weight_kg: float | None = None
    injected_activity_bq: float | None = None
    isotope: str = "F18"
    frame_start_s: float = 0.0
    duration_s: float = 600.0
    parameters: dict = field(default_factory=dict)
    pose: Pose = Pose()

    def region_values(self, what: str) -> np.ndarray:
        """Per-region values: ``"activity"`` (phantom unit), ``"mu_per_cm"``, ``"ct_hu"``,
        ``"dixon_water"``, ``"dixon_fat"``; float64 ``(n_regions,)``."""
        if what == "activity":
            return np.array([r.activity for r in self.regions], np.float64)
        if what == "ct_hu":
            return np.array([r.ct_hu for r in self.regions], np.float64)
        if what in ("mu_per_cm", "dixon_water", "dixon_fat"):
            return np.array([getattr(r.material, what) for r in self.regions], np.float64)
        raise ParameterError(f"unknown region value {what!r}")

    def mr_class_indices(self) -> np.ndarray:
        """Index into :data:`MR_CLASSES` of each region, int ``(n_regions,)``."""
        return np.array([MR_CLASSES.index(r.mr_class) for r in self.regions], np.int64)

    def bounding_box_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners of the smallest scanner-axis-aligned box containing every region (posed)."""
        return self.packed().bounding_box_mm()

    def packed(self) -> PackedPhantom:
        """The phantom as flat arrays for the kernels."""
        kinds, params, first, count, region_of_part, bounds, boxes = [], [], [], [], [], [], []
        for index, region in enumerate(self.regions):
            for part in region.parts:
                first.append(len(kinds))
                count.append(len(part))
                region_of_part.append(index)
                smallest = min(part, key=lambda solid: solid.bounding_radius_mm)
                bounds.append([*smallest.centre_mm, smallest.bounding_radius_mm])
                boxes.append([*np.max([np.subtract(s.centre_mm, s.half_extent_mm) for s in part], axis=0),
                              *np.min([np.add(s.centre_mm, s.half_extent_mm) for s in part], axis=0)])
                for solid in part:
                    kinds.append(solid.kind)
                    params.append([*solid.centre_mm, *solid.half_extent_mm])
        return PackedPhantom(np.array(kinds, np.int32), np.array(params, np.float64).reshape(-1, 6),
                             np.array(first, np.int32), np.array(count, np.int32),
                             np.array(region_of_part, np.int32), np.array(bounds, np.float64).reshape(-1, 4),
                             np.array(boxes, np.float64).reshape(-1, 6), self._to_frame())

    def _to_frame(self) -> np.ndarray:
        rotation = self.pose.rotation()
        return np.hstack([rotation.T, -(rotation.T @ np.asarray(self.pose.shift_mm, np.float64))[:, None]])


def shipped_phantoms() -> dict[str, Path]:
    """Names and paths of the phantoms shipped with petrecon (``phantoms/*.toml``).

    Examples
    --------
    >>> sorted(shipped_phantoms())
    ['nema-iec', 'pentixafor-torso', 'uniform-cylinder']
    """
    return {path.stem: path for path in sorted(resource_dir("phantoms").glob("*.toml"))}


def load_phantom(name_or_path: str | Path, parameters: dict | None = None, pose: Pose | None = None) -> Phantom:
    """Load a shipped phantom by name, or a TOML file by path.

    Parameters
    ----------
    name_or_path : str or Path
        A name from :func:`shipped_phantoms` or a path to a ``.toml`` file.
    parameters : dict, optional
        Overrides of the phantom's ``[parameters]`` (e.g. ``{"ratio": 10}``).
    pose : Pose, optional
        Placement in the scanner; replaces the file's ``[pose]``.

    Examples
    --------
    >>> phantom = load_phantom("nema-iec", {"ratio": 10})
    >>> phantom.parameters["ratio"], len(phantom.regions) > 6
    (10, True)
    """
    shipped = shipped_phantoms()
    path = shipped.get(str(name_or_path)) or Path(name_or_path)
    if not path.is_file():
        raise ParameterError(f"unknown phantom {name_or_path!r}: neither a shipped phantom "
                             f"({', '.join(shipped)}) nor a TOML file")
    try:
        document = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise FormatError(path, "file", f"is not valid TOML ({error})") from None
    phantom = phantom_from_dict(document, parameters, source=str(path))
    return phantom if pose is None else replace(phantom, pose=pose)


def phantom_from_dict(document: dict, parameters: dict | None = None, source: str = "<dict>") -> Phantom:
    """Build a phantom from the parsed TOML structure (see the module docstring)."""
    reader = _Reader(source)
    resolved = dict(document.get("parameters", {}))
    for key, value in (parameters or {}).items():
        if key not in resolved:
            raise ParameterError(f"phantom {document.get('name', source)!r} has no parameter {key!r}; "
                                 f"its parameters: {', '.join(resolved) or 'none'}")
        allowed = document.get("choices", {}).get(key)
        if allowed is not None and not any(value == choice for choice in allowed):
            raise ParameterError(f"phantom parameter {key!r} must be one of {allowed}, got {value!r}")
        resolved[key] = value
    unit = reader.choice(document, "activity_unit", ACTIVITY_UNITS, default="Bq/ml")
    weight = reader.number(document, "weight_kg", default=None, positive=True)
    injected = reader.number(document, "injected_activity_mbq", default=None, positive=True)
    if unit == "SUV" and (weight is None or injected is None):
        raise FormatError(source, "weight_kg / injected_activity_mbq", "are required with activity_unit = 'SUV'")
    regions_spec = document.get("regions")
    if not isinstance(regions_spec, list) or not regions_spec:
        raise FormatError(source, "regions", "must be a non-empty array of tables")
    regions = []
    for index, spec in enumerate(regions_spec):
        where = f"regions[{index}]"
        when = spec.get("when")
        if when is not None and not reader.parameter(resolved, when, f"{where}.when"):
            continue
        regions.append(reader.region(spec, resolved, where))
    return Phantom(
        name=str(document.get("name", Path(source).stem)),
        description=str(document.get("description", "")),
        regions=tuple(regions),
        activity_unit=unit,
        weight_kg=weight,
        injected_activity_bq=None if injected is None else injected * 1e6,
        isotope=str(document.get("isotope", "F18")),
        frame_start_s=reader.number(document, "frame_start_s", default=0.0),
        duration_s=reader.number(document, "duration_s", default=600.0, positive=True),
        parameters=resolved,
        pose=reader.pose(document.get("pose", {})),
    )


class _Reader:
    """Validating accessors that name the file and field in their errors."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field_name: str, message: str) -> FormatError:
        return FormatError(self.source, field_name, message)

    def number(self, table: dict, key: str, default=None, positive: bool = False, where: str = ""):
        if key not in table:
            if default is None and not where:
                return None
            if default is None:
                raise self.fail(f"{where}.{key}", "is missing")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise self.fail(f"{where}.{key}" if where else key, f"must be a number, got {value!r}")
        if positive and value <= 0:
            raise self.fail(f"{where}.{key}" if where else key, f"must be > 0, got {value!r}")
        return float(value)

    def vector(self, table: dict, key: str, where: str, positive: bool = False) -> tuple[float, float, float]:
        value = table.get(key)
        if (not isinstance(value, list) or len(value) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise self.fail(f"{where}.{key}", f"must be 3 numbers, got {value!r}")
        if positive and min(value) <= 0:
            raise self.fail(f"{where}.{key}", f"must be > 0, got {value!r}")
        return tuple(float(v) for v in value)

    def pose(self, table) -> Pose:
        if not isinstance(table, dict) or set(table) - {"rotation_deg", "shift_mm"}:
            raise self.fail("pose", f"must be a table of rotation_deg and shift_mm, got {table!r}")
        return Pose(*(self.vector(table, key, "pose") if key in table else (0.0, 0.0, 0.0)
                      for key in ("rotation_deg", "shift_mm")))

    def choice(self, table: dict, key: str, allowed, default):
        value = table.get(key, default)
        if value not in allowed:
            raise self.fail(key, f"must be one of {list(allowed)}, got {value!r}")
        return value

    def parameter(self, parameters: dict, name, where: str):
        if not isinstance(name, str) or name not in parameters:
            raise self.fail(where, f"names no parameter: {name!r} (parameters: {', '.join(parameters) or 'none'})")
        return parameters[name]

    def activity(self, spec, parameters: dict, where: str) -> float:
        factors = spec if isinstance(spec, list) else [spec]
        value = 1.0
        for factor in factors:
            if isinstance(factor, str):
                factor = self.parameter(parameters, factor, where)
            if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor >= 0:
                raise self.fail(where, f"must be non-negative numbers or parameter names, got {spec!r}")
            value *= float(factor)
        return value

    def solid(self, spec: dict, where: str) -> Solid:
        if not isinstance(spec, dict):
            raise self.fail(where, f"must be a table, got {spec!r}")
        kind = spec.get("type")
        centre = self.vector(spec, "centre_mm", where)
        if kind == "sphere":
            radius = self.number(spec, "radius_mm", positive=True, where=where)
            return Solid(ELLIPSOID, centre, (radius, radius, radius))
        if kind == "ellipsoid":
            return Solid(ELLIPSOID, centre, self.vector(spec, "semi_axes_mm", where, positive=True))
        if kind == "cylinder":
            if "radii_mm" in spec:
                radii = spec["radii_mm"]
                if not (isinstance(radii, list) and len(radii) == 2 and all(
                        isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in radii)):
                    raise self.fail(f"{where}.radii_mm", f"must be 2 positive numbers, got {radii!r}")
                rx, ry = (float(r) for r in radii)
            else:
                rx = ry = self.number(spec, "radius_mm", positive=True, where=where)
            length = self.number(spec, "length_mm", positive=True, where=where)
            return Solid(CYLINDER, centre, (rx, ry, length / 2.0))
        if kind == "box":
            return Solid(BOX, centre, tuple(s / 2.0 for s in self.vector(spec, "size_mm", where, positive=True)))
        raise self.fail(f"{where}.type", f"must be sphere, ellipsoid, cylinder, box or intersection, got {kind!r}")

    def part(self, spec: dict, where: str) -> tuple[Solid, ...]:
        if isinstance(spec, dict) and spec.get("type") == "intersection":
            members = spec.get("of")
            if not isinstance(members, list) or not members:
                raise self.fail(f"{where}.of", "must be a non-empty array of solids")
            return tuple(self.solid(member, f"{where}.of[{k}]") for k, member in enumerate(members))
        return (self.solid(spec, where),)

    def region(self, spec: dict, parameters: dict, where: str) -> Region:
        if not isinstance(spec, dict):
            raise self.fail(where, "must be a table")
        name = spec.get("name", where)
        try:
            material = get_material(spec.get("material", "water"))
        except ParameterError as error:
            raise self.fail(f"{where}.material", str(error)) from None
        if "activity" not in spec:
            raise self.fail(f"{where}.activity", "is missing")
        activity = self.activity(spec["activity"], parameters, f"{where}.activity")
        ct_hu = self.number(spec, "ct_hu", default=material.ct_hu, where=where)
        mr_class = spec.get("mr_class", material.mr_class)
        if mr_class not in MR_CLASSES:
            raise self.fail(f"{where}.mr_class", f"must be one of {list(MR_CLASSES)}, got {mr_class!r}")
        shapes = spec.get("shapes")
        if not isinstance(shapes, list) or not shapes:
            raise self.fail(f"{where}.shapes", "must be a non-empty array of solids")
        parts = tuple(self.part(shape, f"{where}.shapes[{k}]") for k, shape in enumerate(shapes))
        return Region(str(name), parts, activity, material, ct_hu, mr_class)
