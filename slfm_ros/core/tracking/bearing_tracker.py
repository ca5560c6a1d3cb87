"""Sound-source tracks in the world frame from per-window azimuths and the robot's yaw.

Measurement model
    A window's azimuth z is taken at the window centre, where the robot's yaw is psi. A source
    at world bearing beta is heard at body bearing b = beta - psi; a two-ear receiver hears only
    the front-folded value, z = fold(b) + noise (``conventions.fold_to_front``), so one window
    cannot tell b from its mirror pi - b.
Front and back hypotheses
    A new track gets two hypotheses, world bearings psi + z and psi + (pi - z). Both are
    updated by every window the track receives (a Kalman filter on the bearing through the
    fold, whose slope is +1 in front and -1 behind) and weighted by how well they predicted
    it. While the robot keeps still they predict the same folded azimuth, so the weights do
    not move. When the robot turns left by theta, a source in front moves right by theta in
    the folded azimuth and a source behind moves left: only one hypothesis stays static in
    the world, and the other one's weight falls. (For a source near the ear axis the two
    hypotheses lie close together: the bearing is nearly known before front/back is.)
Evidence from overlapping windows
    Successive windows share 1 - hop/window of their audio, so their errors are not
    independent: the measurement variance is scaled by window/hop, which makes one window's
    worth of audio count once whatever the hop. Each measurement is an inlier (Gaussian) or,
    with ``outlier_probability``, uniform over the folded range, so a single wild estimate (a
    reflection, the other source) cannot decide front/back. A window that neither hypothesis
    explains (both miss it by more than three single-window standard deviations: a source
    that moves with the robot, a yaw that is not the robot's) is no evidence either.
Source motion and silence
    The world bearing is a random walk (``source_speed_deg_s``), so a slowly moving source is
    followed. While the robot's yaw is unknown a measurement cannot be placed in the world:
    tracks only coast, and no front/back evidence is gathered; a robot without any rotation
    input (``assume_still``) is taken to keep still, so its tracks live in the body frame and
    never decide front/back. Without measurements a track
    coasts (its variance grows); it is lost after
    ``lost_after_s`` without one (a tentative track after ``tentative_timeout_s``). When the
    world frame itself is lost (``forget_frame``: an unknown turn), tracks keep their identity
    but start their hypotheses again from their next measurement.
Several sources
    A measurement goes to the track whose hypotheses predict it best within the gate
    (``gate_deg`` or three standard deviations); otherwise it starts a new, tentative track.
    The primary track is the confirmed one heard most in the last ``salience_time_s``; a
    rival must be heard clearly more (``PRIMARY_SWITCH_RATIO``) to take over.
States
    tentative  fewer than ``confirm_hits`` measurements so far
    ambiguous  the most probable hypothesis is below ``decide_probability``
    resolved   it reached ``decide_probability`` (and stays resolved until it falls below
               ``undecide_probability``)
    lost       no measurement for too long: reported once, then the track is removed
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, fields
from typing import Any

from slfm_ros.core.conventions import fold_to_front, wrap_angle
from slfm_ros.core.errors import ConfigError

_NS_PER_S = 1_000_000_000
TRACK_STATES = ("tentative", "ambiguous", "resolved", "lost")
# A hypothesis keeps at least this weight, so a wrong decision can still be undone.
MIN_HYPOTHESIS_WEIGHT = 1e-4
# A rival track must be this much more salient than the primary one to replace it.
PRIMARY_SWITCH_RATIO = 1.5


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of ``BearingTracker`` (node parameters ``tracker_<name>``, except hop_s and
    window_s, which are the pipeline's)."""

    hop_s: float = 0.1
    window_s: float = 1.0
    front_back_ambiguous: bool = True
    measurement_std_deg: float = 4.0
    source_speed_deg_s: float = 5.0
    decide_probability: float = 0.99
    undecide_probability: float = 0.9
    front_prior: float = 0.5
    outlier_probability: float = 0.1
    gate_deg: float = 20.0
    confirm_hits: int = 3
    tentative_timeout_s: float = 1.5
    lost_after_s: float = 6.0
    salience_time_s: float = 3.0
    max_tracks: int = 3

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ConfigError(f"tracker config: {what}")

        need(self.hop_s > 0 and self.window_s > 0, "hop_s and window_s must be > 0")
        need(self.measurement_std_deg > 0, "tracker_measurement_std_deg must be > 0")
        need(self.source_speed_deg_s >= 0, "tracker_source_speed_deg_s must be >= 0")
        need(
            0.5 < self.undecide_probability <= self.decide_probability < 1.0,
            "need 0.5 < tracker_undecide_probability <= tracker_decide_probability < 1, got "
            f"{self.undecide_probability} and {self.decide_probability}",
        )
        need(0.0 < self.front_prior < 1.0, "tracker_front_prior must be in (0, 1)")
        need(0.0 <= self.outlier_probability < 1.0, "tracker_outlier_probability in [0, 1)")
        need(self.gate_deg > 0, f"tracker_gate_deg must be > 0, got {self.gate_deg}")
        need(self.confirm_hits >= 1, "tracker_confirm_hits must be >= 1")
        need(
            0 < self.tentative_timeout_s <= self.lost_after_s,
            "need 0 < tracker_tentative_timeout_s <= tracker_lost_after_s",
        )
        need(self.salience_time_s > 0, "tracker_salience_time_s must be > 0")
        need(self.max_tracks >= 1, "tracker_max_tracks must be >= 1")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrackerConfig:
        """From slfm_node's parameters: ``tracker_<field>``, plus ``hop_s`` and ``window_s``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f.name if f.name in ("hop_s", "window_s") else f"tracker_{f.name}"
            if key in params:
                values[f.name] = params[key]
        return cls(**values)

    @property
    def effective_measurement_variance(self) -> float:
        """rad^2 per window, scaled for the overlap of successive windows (module doc)."""
        overlap = max(1.0, self.window_s / self.hop_s)
        return math.radians(self.measurement_std_deg) ** 2 * overlap


@dataclass
class Hypothesis:
    """One candidate world bearing (rad, wrapped) with its variance (rad^2) and weight."""

    bearing: float
    variance: float
    weight: float


@dataclass
class Track:
    """A tracked source (see module doc); times are window ends in ns."""

    track_id: int
    hypotheses: list[Hypothesis]
    created_ns: int
    last_heard_ns: int
    updated_ns: int  # time (window centre) the hypotheses were last predicted to
    hits: int = 1
    salience: float = 1.0
    decided: bool = False
    reanchor: bool = False  # the world frame was lost: start again from the next measurement

    def best(self, yaw: float) -> Hypothesis:
        """The most probable hypothesis; a tie goes to the one in front at ``yaw``."""
        return max(
            self.hypotheses,
            key=lambda h: (round(h.weight, 9), math.cos(h.bearing - yaw) > 0),
        )


@dataclass(frozen=True)
class TrackReport:
    """One track after a window.

    world_bearing:     bearing of the most probable hypothesis in the world frame (rad).
    body_bearing:      the same relative to the robot at the window end (rad, full circle).
    variance:          rad^2 of the hypothesis mixture about that bearing: the track's own
                       variance once resolved, large while front and back disagree.
    front_probability: probability that the source is in front of the ear axis now.
    heard_age_s:       time since the last measurement the track received.
    hypotheses:        (world bearing, probability, own variance) of each hypothesis, most
                       probable first.
    """

    track_id: int
    state: str
    primary: bool
    world_bearing: float
    body_bearing: float
    variance: float
    front_probability: float
    heard_age_s: float
    hypotheses: tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class TrackerUpdate:
    """What one window did: the reports (primary first, lost tracks last), and which track
    received the window's measurement (None: none, or a new track was started)."""

    stamp_ns: int
    tracks: tuple[TrackReport, ...]
    associated_id: int | None = None
    new_track_id: int | None = None

    @property
    def primary(self) -> TrackReport | None:
        return next((t for t in self.tracks if t.primary), None)


@dataclass
class _Prediction:
    innovation: float
    slope: float
    variance: float  # innovation variance
    likelihood: float  # of the measurement, outlier part included
    inlier: float  # Gaussian part alone


@dataclass
class BearingTracker:
    """Front/back-resolving bearing tracker (see module doc)."""

    config: TrackerConfig
    tracks: list[Track] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _primary_id: int | None = None
    _last_yaw: float = 0.0

    def rebase(self, shift: float) -> None:
        """The world frame turned by ``shift`` (rad): re-express every track in it."""
        if shift:
            for track in self.tracks:
                for h in track.hypotheses:
                    h.bearing = float(wrap_angle(h.bearing + shift))

    def forget_frame(self) -> None:
        """The world frame was lost (the robot turned by an unknown angle): every track starts
        its bearings and its front/back decision again from its next measurement."""
        for track in self.tracks:
            track.reanchor = True
            track.decided = False

    def update(
        self,
        end_ns: int,
        azimuth: float | None,
        yaw_at_window: float | None,
        yaw_now: float | None,
        assume_still: bool = False,
        heard_ns: int | None = None,
    ) -> TrackerUpdate:
        """One window ending at ``end_ns``: its azimuth (rad, body frame; None without an
        estimate), the robot's yaw when the azimuth held and at the window's end (None when
        unknown: the window's azimuth is then not used, unless ``assume_still``: the robot has
        no rotation input at all, so it is taken not to turn, and no front/back evidence is
        gathered). ``heard_ns``: when the azimuth held (default: the window's centre)."""
        cfg = self.config
        centre_ns = end_ns - int(round(cfg.window_s * _NS_PER_S / 2))
        if heard_ns is not None:
            centre_ns = heard_ns
        known = yaw_at_window is not None
        psi = yaw_at_window if yaw_at_window is not None else self._last_yaw
        psi_now = yaw_now if yaw_now is not None else psi
        self._last_yaw = psi_now
        for track in self.tracks:
            self._predict(track, centre_ns, math.radians(cfg.source_speed_deg_s) ** 2)
        associated = new = None
        if (known or assume_still) and azimuth is not None and math.isfinite(azimuth):
            z = fold_to_front(azimuth) if cfg.front_back_ambiguous else wrap_angle(azimuth)
            match = self._associate(float(z), psi)
            if match is None:
                new = self._start_track(end_ns, centre_ns, float(z), psi).track_id
            elif match.reanchor:
                match.hypotheses = self._seed(float(z), psi)
                match.reanchor = False
            else:
                self._correct(match, float(z), psi, evidence=known)
                match.hits += 1
                match.salience += 1.0
                match.last_heard_ns = end_ns
                associated = match.track_id
        return TrackerUpdate(end_ns, self._reports(end_ns, psi_now), associated, new)

    # ------------------------------------------------------------------ filter
    def _predict(self, track: Track, centre_ns: int, speed_var: float) -> None:
        dt = (centre_ns - track.updated_ns) / _NS_PER_S
        if dt <= 0:
            return
        for h in track.hypotheses:
            h.variance += speed_var * dt
        track.salience *= math.exp(-dt / self.config.salience_time_s)
        track.updated_ns = centre_ns

    def _prediction(self, h: Hypothesis, z: float, psi: float, noise_var: float) -> _Prediction:
        body = float(wrap_angle(h.bearing - psi))
        if self.config.front_back_ambiguous:
            predicted = float(fold_to_front(body))
            slope = 1.0 if math.cos(body) >= 0 else -1.0
            innovation = z - predicted  # both in [-pi/2, pi/2]: no wrap
            span = math.pi
        else:
            predicted, slope = body, 1.0
            innovation = float(wrap_angle(z - predicted))
            span = 2 * math.pi
        var = h.variance + noise_var
        gauss = math.exp(-0.5 * innovation**2 / var) / math.sqrt(2 * math.pi * var)
        eps = self.config.outlier_probability
        inlier = (1 - eps) * gauss
        return _Prediction(innovation, slope, var, inlier + eps / span, inlier)

    def _associate(self, z: float, psi: float) -> Track | None:
        """The live track that predicts ``z`` best within its gate, or None."""
        single_var = math.radians(self.config.measurement_std_deg) ** 2
        best, best_score = None, 0.0
        for track in self.tracks:
            if track.reanchor:
                continue
            score, gated = 0.0, False
            for h in track.hypotheses:
                p = self._prediction(h, z, psi, single_var)
                gate = max(math.radians(self.config.gate_deg), 3.0 * math.sqrt(p.variance))
                if h.weight >= 0.01 and abs(p.innovation) <= gate:
                    gated = True
                score += h.weight * p.inlier
            if gated and score > best_score:
                best, best_score = track, score
        if best is None:
            # A track whose frame was lost takes a measurement no other track explains.
            waiting = [t for t in self.tracks if t.reanchor]
            if waiting:
                best = max(waiting, key=lambda t: t.salience)
        return best

    def _correct(self, track: Track, z: float, psi: float, evidence: bool) -> None:
        noise = self.config.effective_measurement_variance
        single = math.radians(self.config.measurement_std_deg) ** 2
        explained = any(
            abs(p.innovation) <= 3.0 * math.sqrt(p.variance)
            for p in (self._prediction(h, z, psi, single) for h in track.hypotheses)
        )
        evidence = evidence and explained
        for h in track.hypotheses:
            p = self._prediction(h, z, psi, noise)
            responsibility = p.inlier / p.likelihood
            gain = h.variance * p.slope / p.variance * responsibility
            h.bearing = float(wrap_angle(h.bearing + gain * p.innovation))
            h.variance = max(h.variance - responsibility * h.variance**2 / p.variance, 1e-12)
            if evidence:
                h.weight *= p.likelihood
        self._normalise(track)

    def _normalise(self, track: Track) -> None:
        total = sum(h.weight for h in track.hypotheses)
        if not total > 0 or not math.isfinite(total):
            for h in track.hypotheses:
                h.weight = 1.0 / len(track.hypotheses)
            return
        for h in track.hypotheses:
            h.weight = max(h.weight / total, MIN_HYPOTHESIS_WEIGHT)
        total = sum(h.weight for h in track.hypotheses)
        for h in track.hypotheses:
            h.weight /= total

    def _seed(self, z: float, psi: float) -> list[Hypothesis]:
        """The hypotheses of a measurement ``z`` heard at yaw ``psi``: z and its mirror."""
        cfg = self.config
        var = math.radians(cfg.measurement_std_deg) ** 2
        hyps = [Hypothesis(float(wrap_angle(psi + z)), var, 1.0)]
        if cfg.front_back_ambiguous:
            hyps[0].weight = cfg.front_prior
            hyps.append(Hypothesis(float(wrap_angle(psi + math.pi - z)), var, 1 - cfg.front_prior))
        return hyps

    def _start_track(self, end_ns: int, centre_ns: int, z: float, psi: float) -> Track:
        cfg = self.config
        track = Track(next(self._ids), self._seed(z, psi), end_ns, end_ns, centre_ns)
        if len(self.tracks) >= cfg.max_tracks:
            # Make room: the least salient track other than the primary one goes.
            others = [t for t in self.tracks if t.track_id != self._primary_id]
            self.tracks.remove(min(others or self.tracks, key=lambda t: t.salience))
        self.tracks.append(track)
        return track

    # ------------------------------------------------------------------ reporting
    def _state(self, track: Track, end_ns: int) -> str:
        cfg = self.config
        silent_s = (end_ns - track.last_heard_ns) / _NS_PER_S
        if track.hits < cfg.confirm_hits:
            return "lost" if silent_s > cfg.tentative_timeout_s else "tentative"
        if silent_s > cfg.lost_after_s:
            return "lost"
        top = max(h.weight for h in track.hypotheses)
        if track.decided and top < cfg.undecide_probability:
            track.decided = False
        elif not track.decided and top >= cfg.decide_probability:
            track.decided = True
        return "resolved" if track.decided else "ambiguous"

    def _choose_primary(self, states: dict[int, str]) -> None:
        confirmed = [t for t in self.tracks if states[t.track_id] in ("ambiguous", "resolved")]
        if not confirmed:
            self._primary_id = None
            return
        top = max(confirmed, key=lambda t: t.salience)
        current = next((t for t in confirmed if t.track_id == self._primary_id), None)
        if current is None or top.salience > PRIMARY_SWITCH_RATIO * current.salience:
            self._primary_id = top.track_id

    def _reports(self, end_ns: int, psi_now: float) -> tuple[TrackReport, ...]:
        states = {t.track_id: self._state(t, end_ns) for t in self.tracks}
        self._choose_primary(states)
        reports = [self._report(t, states[t.track_id], end_ns, psi_now) for t in self.tracks]
        self.tracks = [t for t in self.tracks if states[t.track_id] != "lost"]
        reports.sort(key=lambda r: (not r.primary, r.state == "lost"))
        return tuple(reports)

    def _report(self, track: Track, state: str, end_ns: int, psi_now: float) -> TrackReport:
        best = track.best(psi_now)
        variance = sum(
            h.weight * (h.variance + float(wrap_angle(h.bearing - best.bearing)) ** 2)
            for h in track.hypotheses
        )
        front = sum(h.weight for h in track.hypotheses if math.cos(h.bearing - psi_now) > 0)
        ordered = sorted(track.hypotheses, key=lambda h: h is not best)
        return TrackReport(
            track_id=track.track_id,
            state=state,
            primary=track.track_id == self._primary_id and state != "lost",
            world_bearing=best.bearing,
            body_bearing=float(wrap_angle(best.bearing - psi_now)),
            variance=variance,
            front_probability=min(1.0, max(0.0, front)),
            heard_age_s=(end_ns - track.last_heard_ns) / _NS_PER_S,
            hypotheses=tuple((h.bearing, h.weight, h.variance) for h in ordered),
        )
