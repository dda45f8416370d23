"""The pure validation module, called directly: a registry, a kind, mixins and what a client
gives, no store and no backend."""

from __future__ import annotations

import pytest

from occi import errors
from occi import infrastructure as infra
from occi import validation as v
from occi.model import ActionInvocation, AttributeDef, Mixin, Resource
from occi.registry import Registry

CRTP = infra.CRTP_SCHEME
SMALL, MEDIUM, LARGE = CRTP + "small", CRTP + "medium", CRTP + "large"
SSH = infra.SSH_KEY.id
USER_DATA = infra.USER_DATA.id
SERIAL = Mixin(
    "http://example.com/occi/tags#",
    "serial",
    "A serial the server sets",
    {
        "com.example.serial": AttributeDef("com.example.serial", mutable=False),
        "com.example.level": AttributeDef(
            "com.example.level", type="integer", mutable=False, default=3
        ),
    },
    location="/serial/",
    user_defined=True,
)


@pytest.fixture
def reg():
    return Registry(user_mixins=[SERIAL])


def create(reg, kind, given, mixins=()):
    checked = v.entity_attributes(reg, kind, v.check_mixins(reg, kind, mixins), given)
    assert checked.changed == {}
    return checked.attributes


def replace(reg, kind, current, given, *, mixins=(), new_mixins=None, full=True):
    new = v.check_mixins(reg, kind, mixins if new_mixins is None else new_mixins)
    return v.entity_attributes(
        reg, kind, new, given, current=current, current_mixins=list(mixins), full=full
    )


# ---------------------------------------------------------------------------------- mixins
def test_mixins_are_checked_and_given_once(reg):
    assert v.check_mixins(reg, infra.COMPUTE, [SSH, SSH, SMALL]) == [SSH, SMALL]
    with pytest.raises(errors.BadRequest, match="does not apply to"):
        v.check_mixins(reg, infra.STORAGE, [SSH])
    with pytest.raises(errors.BadRequest, match="is a kind, not a mixin"):
        v.check_mixins(reg, infra.COMPUTE, [infra.STORAGE.id])
    with pytest.raises(errors.BadRequest, match="not defined here"):
        v.check_mixins(reg, infra.COMPUTE, ["http://example.com/x#nothing"])
    with pytest.raises(errors.BadRequest, match="only one resource_tpl mixin per entity"):
        v.check_mixins(reg, infra.COMPUTE, [SMALL, MEDIUM])


def test_an_added_template_replaces_the_one_of_its_family(reg):
    assert v.added_mixins(reg, infra.COMPUTE, [SMALL, SSH], [LARGE]) == [SSH, LARGE]
    assert v.added_mixins(reg, infra.COMPUTE, [SMALL], [SSH, SMALL]) == [SSH, SMALL]


# ---------------------------------------------------------------------------------- creation
def test_creation_fills_defaults_and_takes_legacy_names(reg):
    a = create(
        reg,
        infra.COMPUTE,
        {"occi.compute.cores": "2", "occi.compute.user_data": "aGk=", "occi.compute.speed": 2},
        [USER_DATA],
    )
    assert a["occi.compute.cores"] == 2 and a["occi.compute.userdata"] == "aGk="
    assert a["occi.compute.state"] == "inactive" and a["occi.compute.speed"] == 2.0
    assert "occi.compute.user_data" not in a and "occi.core.id" not in a


def test_creation_needs_the_required_attributes(reg):
    with pytest.raises(errors.BadRequest, match="missing required attribute occi.storage.size"):
        create(reg, infra.STORAGE, {})
    with pytest.raises(errors.BadRequest, match="serial is not defined for .*#storage$"):
        create(reg, infra.STORAGE, {"com.example.serial": "x"})
    with pytest.raises(errors.BadRequest, match="serial is not defined for .*with its mixins"):
        create(reg, infra.COMPUTE, {"com.example.serial": "x"}, [SMALL])
    with pytest.raises(errors.BadRequest, match="must be"):
        create(reg, infra.STORAGE, {"occi.storage.size": "big"})


def test_a_resource_template_sets_the_sizes_at_creation(reg):
    a = create(reg, infra.COMPUTE, {"occi.compute.cores": 8}, [SMALL])
    assert a["occi.compute.cores"] == 1 and a["occi.compute.ephemeral_storage.size"] == 10.0


def test_an_immutable_attribute_is_given_once(reg):
    a = create(reg, infra.COMPUTE, {"occi.compute.state": "inactive"})
    assert a["occi.compute.state"] == "inactive"
    a = create(reg, infra.COMPUTE, {"occi.compute.ephemeral_storage.size": 10}, [SMALL])
    assert a["occi.compute.ephemeral_storage.size"] == 10.0
    with pytest.raises(errors.Forbidden, match="occi.compute.state is immutable"):
        create(reg, infra.COMPUTE, {"occi.compute.state": "active"})
    with pytest.raises(errors.Forbidden, match="ephemeral_storage.size is immutable"):
        create(reg, infra.COMPUTE, {"occi.compute.ephemeral_storage.size": 50}, [SMALL])
    # with no default, the client's value is set once, at creation; a state message is the
    # server's to write and is left out
    for name, kind, mixins in (
        ("occi.networkinterface.interface", infra.NETWORKINTERFACE, []),
        ("com.example.serial", infra.COMPUTE, [SERIAL.id]),
    ):
        assert create(reg, kind, {name: "eth7"}, mixins)[name] == "eth7"
    assert "occi.compute.state.message" not in create(
        reg, infra.COMPUTE, {"occi.compute.state.message": "made by hand"}
    )
    assert create(reg, infra.COMPUTE, {"com.example.level": 3}, [SERIAL.id])["com.example.level"]


# ---------------------------------------------------------------------------------- replacement
def test_replacement_refuses_a_change_to_an_immutable_attribute(reg):
    current = create(reg, infra.COMPUTE, {}, [SERIAL.id])
    same = replace(reg, infra.COMPUTE, current, dict(current), mixins=[SERIAL.id])
    assert same.attributes == current and same.changed == {}
    for name, value in (("occi.compute.state", "active"), ("com.example.level", 4)):
        with pytest.raises(errors.Forbidden, match=f"{name} is immutable: it is"):
            replace(reg, infra.COMPUTE, current, {name: value}, mixins=[SERIAL.id], full=False)
    # an immutable attribute the entity lacks cannot be given later either
    with pytest.raises(errors.Forbidden, match="com.example.serial is immutable: it is None"):
        replace(reg, infra.COMPUTE, current, {"com.example.serial": "x"}, mixins=[SERIAL.id])
    # null leaves an immutable attribute alone, and removes a mutable one
    out = replace(
        reg,
        infra.COMPUTE,
        {**current, "occi.compute.hostname": "a"},
        {"occi.compute.state": None, "occi.compute.hostname": None},
        mixins=[SERIAL.id],
        full=False,
    )
    assert out.attributes["occi.compute.state"] == "inactive"
    assert "occi.compute.hostname" not in out.attributes
    assert out.changed == {"occi.compute.hostname": None}


def test_full_replacement_resets_to_defaults_and_partial_keeps(reg):
    current = {
        **create(reg, infra.COMPUTE, {"occi.compute.cores": 4}),
        "occi.compute.hostname": "a",
    }
    full = replace(reg, infra.COMPUTE, current, {"occi.compute.memory": 2})
    assert full.attributes["occi.compute.cores"] == 1  # the default again
    assert "occi.compute.hostname" not in full.attributes
    assert full.changed == {
        "occi.compute.memory": 2.0,
        "occi.compute.cores": 1,
        "occi.compute.hostname": None,
    }
    part = replace(reg, infra.COMPUTE, current, {"occi.compute.memory": 2}, full=False)
    assert part.attributes["occi.compute.cores"] == 4 and part.changed == {
        "occi.compute.memory": 2.0
    }
    with pytest.raises(errors.BadRequest, match="missing required attribute occi.storage.size"):
        replace(reg, infra.STORAGE, {"occi.storage.state": "offline"}, {})


def test_a_new_template_resizes_but_keeps_immutable_attributes(reg):
    current = create(reg, infra.COMPUTE, {}, [SMALL])
    out = replace(reg, infra.COMPUTE, current, {}, mixins=[SMALL], new_mixins=[LARGE], full=False)
    assert out.mixins == [LARGE] and out.attributes["occi.compute.cores"] == 4
    assert out.attributes["occi.compute.ephemeral_storage.size"] == 10.0  # as created
    assert "occi.compute.ephemeral_storage.size" not in out.changed


def test_a_direct_resize_drops_the_template_it_contradicts(reg):
    current = create(reg, infra.COMPUTE, {}, [MEDIUM])
    agree = replace(reg, infra.COMPUTE, current, {"occi.compute.cores": 2}, mixins=[MEDIUM])
    assert agree.mixins == [MEDIUM] and agree.dropped == []
    out = replace(
        reg, infra.COMPUTE, current, {"occi.compute.memory": 6}, mixins=[MEDIUM], full=False
    )
    assert out.mixins == [] and out.dropped == [MEDIUM]
    assert out.attributes["occi.compute.memory"] == 6.0


# ---------------------------------------------------------------------------------- filters
def test_filters_are_coerced_by_their_attribute(reg):
    assert v.filter_attributes(reg, {"occi.compute.cores": "2", "x.y": "z"}) == {
        "occi.compute.cores": 2,
        "x.y": "z",
    }
    assert v.filter_attributes(reg, {"occi.compute.user_data": "a"}) == {
        "occi.compute.userdata": "a"
    }
    with pytest.raises(errors.BadRequest, match="^filter: "):
        v.filter_attributes(reg, {"occi.compute.cores": "many"})


# ---------------------------------------------------------------------------------- actions
def compute(state):
    return Resource(
        infra.COMPUTE.id, "c1", attributes={"occi.compute.state": state}, location="/compute/c1"
    )


def test_an_action_is_found_and_its_parameters_checked(reg):
    action, params = v.check_action(reg, compute("active"), "stop", ActionInvocation(None))
    assert action.id == infra.COMPUTE.id.replace("#compute", "/compute/action#stop")
    assert set(params) <= set(action.attributes)
    with pytest.raises(errors.BadRequest, match="has no action 'fly'; its actions are"):
        v.check_action(reg, compute("active"), "fly", ActionInvocation(None))
    with pytest.raises(errors.BadRequest, match="takes no parameter 'speed'"):
        v.check_action(
            reg, compute("active"), "stop", ActionInvocation(None, attributes={"speed": 1})
        )
    with pytest.raises(errors.BadRequest, match="does not match"):
        inv = ActionInvocation(infra.STORAGE.id.replace("#storage", "/storage/action#online"))
        v.check_action(reg, compute("active"), "stop", inv)


def test_the_state_machine_counts_the_queued_actions(reg):
    with pytest.raises(errors.Conflict, match="/compute/c1: "):
        v.check_action(reg, compute("inactive"), "stop", ActionInvocation(None))
    v.check_action(reg, compute("inactive"), "stop", ActionInvocation(None), queued=["start"])
    with pytest.raises(errors.Conflict, match="once the actions queued for it are done"):
        v.check_action(reg, compute("active"), "suspend", ActionInvocation(None), queued=["stop"])
