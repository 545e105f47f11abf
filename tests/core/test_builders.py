"""The core's cheap constructors make exactly what the frozen dataclasses' own do.

``scalerd.core.model.builder`` fills a mutable twin's slots and turns it into the frozen
class; the state's ``_evolve`` copies fields the same way. What they return must be
indistinguishable from ``cls(...)`` and ``dataclasses.replace``: same type, equal, hashed
and printed alike, frozen, and each default factory called afresh.
"""

from __future__ import annotations

import copy
import importlib
import pickle
from dataclasses import FrozenInstanceError, dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

import orjson
import pytest

from scalerd.core import model
from scalerd.core.bounds import Bounds
from scalerd.core.model import (
    BreakerState,
    Capacity,
    Controls,
    Decision,
    DemandHistory,
    InputReport,
    NotScaled,
    Observation,
    Reason,
    Recommendation,
    RuleReport,
    Sample,
    ScaleEvent,
    Step,
    TargetState,
    builder,
)
from scalerd.core.recommend import Evaluation, OutTrigger, Proposal

from .build import at

# the module (``scalerd.core.decide`` the attribute is the function)
decide_module = importlib.import_module("scalerd.core.decide")

NOW = at(0)
REASON = (Step.RECOMMENDED, 2, 3, "'cpu' proposes 3", {"proposals": 1}, NotScaled.AT_MAX)
INPUT = ("cpu", "prom", 71.5, "avg", 60.0, 4, 2.0, None)
REPORT = ("cpu", "track", True, 3, "cpu=71.5: ceil(2 x 71.5 / 50) = 3")

# (class, its builder, the arguments of one value)
CASES: list[tuple[type[Any], Any, tuple[Any, ...]]] = [
    (Sample, model.build_sample, (NOW, 1.5)),
    (Observation, model.build_observation, ("cpu", (Sample(NOW, 1.5),))),
    (Observation, model.build_observation, ("cpu", (), "timed out")),
    (Capacity, model.build_capacity, (3, 2)),
    (Capacity, model.build_capacity, (3, 2, "op-1")),
    (Recommendation, model.build_recommendation, (NOW, 4)),
    (ScaleEvent, model.build_scale_event, (NOW, 2, 4)),
    (Reason, model.build_reason, REASON),
    (Reason, model.build_reason, REASON[:4]),
    (InputReport, model.build_input, INPUT),
    (InputReport, model.build_input, (*INPUT[:7], "stale")),
    (RuleReport, model.build_rule_report, REPORT),
    (Proposal, builder(Proposal), ("cpu", "track", 3, timedelta(0))),
    (OutTrigger, builder(OutTrigger), ("cpu", 80.0, False, abs)),
    (Bounds, builder(Bounds), (1, 10, None, "office")),
    (TargetState, model.build_state, ()),
    (
        TargetState,
        model.build_state,
        (
            {"cpu": (Sample(NOW, 1.0),)},
            (Recommendation(NOW, 2),),
            (ScaleEvent(NOW, 1, 2),),
            NOW,
            NOW,
            1,
            2,
            NOW,
            Controls("all", NOW, 3, None),
            ((NOW, 2),),
            DemandHistory(5, (1.0, None)),
            {"db": BreakerState(True, NOW, None, 0.9)},
        ),
    ),
]


def decision_args() -> dict[str, Any]:
    return {
        "target": "web",
        "at": NOW,
        "current": Capacity(2, 2),
        "recommended": 3,
        "desired": 3,
        "steps": (Reason(*REASON),),
        "inputs": (InputReport(*INPUT),),
        "rules": (RuleReport(*REPORT),),
        "not_scaled_reason": None,
        "cooldown": timedelta(seconds=30),
        "tier": "S2",
        "restarts": True,
    }


def test_every_builder_builds_its_own_class() -> None:
    """Each builder the core uses is tested below, with the class it stands for."""
    builders = {value for name, value in vars(model).items() if name.startswith("build_")}
    tested = {case[1]: case[0] for case in CASES} | {model.build_decision: Decision}
    assert builders <= set(tested)
    for build, cls in tested.items():
        assert build.__slots__ == cls.__slots__


@pytest.mark.parametrize(("cls", "build", "args"), CASES, ids=lambda case: repr(case)[:40])
def test_a_built_value_is_the_class_s_own(
    cls: type[Any], build: Any, args: tuple[Any, ...]
) -> None:
    built, made = build(*args), cls(*args)
    assert type(built) is cls
    assert built == made and made == built
    assert repr(built) == repr(made)
    assert [getattr(built, f.name) for f in fields(cls)] == [
        getattr(made, f.name) for f in fields(cls)
    ]
    with pytest.raises(FrozenInstanceError):
        built.__setattr__(fields(cls)[0].name, None)
    assert replace(built) == made
    assert copy.deepcopy(built) == made
    if cls not in (OutTrigger,):  # a function's closure does not pickle
        assert pickle.loads(pickle.dumps(built)) == made
    try:
        expected_hash = hash(made)
    except TypeError:  # a field holds a dict
        with pytest.raises(TypeError):
            hash(built)
    else:
        assert hash(built) == expected_hash


def test_keywords_and_defaults_are_the_class_s() -> None:
    keywords = dict(zip((f.name for f in fields(Reason)), REASON[:4], strict=False))
    assert model.build_reason(**keywords) == Reason(**keywords)
    assert model.build_decision(**decision_args()) == Decision(**decision_args())
    short = {k: v for k, v in decision_args().items() if k not in ("cooldown", "tier", "restarts")}
    assert model.build_decision(**short) == Decision(**short)
    with pytest.raises(TypeError):
        model.build_reason(Step.RECOMMENDED, 1, 2)  # detail is required, as in Reason
    with pytest.raises(TypeError):
        model.build_capacity(1, 2, None, "extra")


def test_a_default_factory_is_called_for_each_value() -> None:
    first, second = model.build_state(), model.build_state()
    assert first.samples == {} and first.samples is not second.samples
    assert first.breakers is not second.breakers
    assert model.build_reason(*REASON[:4]).data is not model.build_reason(*REASON[:4]).data


def test_a_class_the_builder_cannot_copy_is_refused() -> None:
    @dataclass(frozen=True)
    class WithoutSlots:
        value: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            raise ValueError("checked")

    @dataclass(frozen=True, slots=True)
    class Derived:
        value: int
        twice: int = field(init=False)

    for cls in (WithoutSlots, Checked, Derived):
        with pytest.raises(TypeError):
            builder(cls)


def test_evolving_a_state_is_replacing_its_fields() -> None:
    state = CASES[-1][2]
    base = TargetState(*state)
    names = [f.name for f in fields(TargetState)]
    others = TargetState()
    for name in names:
        change = {name: getattr(others, name)}
        evolved = decide_module._evolve(base, **change)
        assert type(evolved) is TargetState
        assert evolved == replace(base, **change)
        assert all(
            getattr(evolved, other) is getattr(base, other) for other in names if other != name
        )
    assert decide_module._evolve(base) == base
    with pytest.raises(FrozenInstanceError):
        decide_module._evolve(base).__setattr__("consecutive_failures", 9)
    with pytest.raises(TypeError):
        decide_module._evolve(base, no_such_field=1)


def test_an_evaluation_is_the_class_s_own() -> None:
    args = ((InputReport(*INPUT),), (RuleReport(*REPORT),), (), (), False, None, ())
    built = builder(Evaluation)(*args)
    assert type(built) is Evaluation and built == Evaluation(*args)


def test_a_text_written_later_is_the_text_written_now() -> None:
    """A step or a report whose detail is a ``later`` text reads, compares, prints,
    copies and serializes exactly as one given the rendered text."""
    template = "ratio {:.3f}; ceil({:g} / {:g}) = {}".format

    def lazy() -> tuple[Reason, RuleReport]:
        text = model.later(template, 1.23456, 370.5, 90.0, 5)
        return (
            model.build_reason(Step.RECOMMENDED, 2, 5, text, {"proposals": 1}),
            model.build_rule_report("surge", "track", True, 5, text),
        )

    written = "ratio 1.235; ceil(370.5 / 90) = 5"
    eager = (
        Reason(Step.RECOMMENDED, 2, 5, written, {"proposals": 1}),
        RuleReport("surge", "track", True, 5, written),
    )
    for index, value in enumerate(eager):
        assert lazy()[index].detail == written
        assert lazy()[index] == value and value == lazy()[index]
        assert repr(lazy()[index]) == repr(value)
        assert replace(lazy()[index]) == value
        assert pickle.loads(pickle.dumps(lazy()[index])) == value
        assert copy.deepcopy(lazy()[index]) == value
    assert lazy()[0].as_dict() == eager[0].as_dict()
    assert orjson.dumps(lazy()[1]) == orjson.dumps(eager[1])
    assert orjson.dumps([lazy()[1]], default=str) == orjson.dumps([eager[1]])
    # read twice: rendered once, then kept
    reason = lazy()[0]
    assert reason.detail is reason.detail
    with pytest.raises(FrozenInstanceError):
        reason.__setattr__("detail", "other")
    assert model.written("as it is") == "as it is"
