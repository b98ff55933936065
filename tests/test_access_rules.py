"""Roles, permissions and the agency-tree rule (core/access.py): examples and properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ivr_service.core.access import (
    ROLE_PERMISSIONS,
    TOKEN_SCOPES,
    Grant,
    Permission,
    Principal,
    Role,
    allowed,
    ancestors,
    mask_phone,
    visible,
)

# Province 1 → department 2 → communes 4, 5; province 1 → district 3; another province 6.
TREE: dict[int, int | None] = {1: None, 2: 1, 3: 1, 4: 2, 5: 2, 6: None}


def test_roles_nest_viewer_operator_manager_admin() -> None:
    viewer, operator, manager, admin = (ROLE_PERMISSIONS[r] for r in (Role.VIEWER, Role.OPERATOR, Role.MANAGER,
                                                                       Role.ADMIN))
    assert viewer < operator < manager < admin == frozenset(Permission)
    assert Permission.CONTACTS_READ not in viewer                 # phone numbers always masked for viewers
    assert {Permission.CAMPAIGNS_STEER, Permission.OPTOUTS_WRITE} <= operator
    # The one-stop-shop feed: operators (and tokens given the scope) report transactions.
    assert Permission.TRANSACTIONS_WRITE in operator and Permission.TRANSACTIONS_WRITE not in viewer
    assert Permission.TRANSACTIONS_WRITE in TOKEN_SCOPES and Permission.TRANSACTIONS_WRITE.value == "transactions:write"
    assert not {Permission.FRAMES_WRITE, Permission.CAMPAIGNS_WRITE} & operator   # no frames or configuration
    assert Permission.USERS_WRITE not in manager and Permission.AUDIT_READ not in manager
    assert Permission.USERS_WRITE not in TOKEN_SCOPES and Permission.TOKENS_WRITE not in TOKEN_SCOPES


def test_a_grant_covers_its_subtree_and_nothing_else() -> None:
    district_manager = Principal.user(7, "an", [Grant(Role.MANAGER, 2)])
    assert [a for a in TREE if allowed(district_manager, Permission.FRAMES_WRITE, a, TREE)] == [2, 4, 5]
    assert not allowed(district_manager, Permission.FRAMES_WRITE, None, TREE)      # installation-wide
    assert not allowed(district_manager, Permission.USERS_WRITE, 4, TREE)          # not a manager's
    assert visible(district_manager, Permission.CAMPAIGNS_READ, TREE) == {2, 4, 5}
    everywhere = Principal.user(1, "admin", [Grant(Role.ADMIN, None)])
    assert visible(everywhere, Permission.AUDIT_READ, TREE) is None
    assert allowed(everywhere, Permission.AUDIT_READ, None, TREE)
    nobody = Principal.user(9, "new", [])
    assert visible(nobody, Permission.CAMPAIGNS_READ, TREE) == set() and not nobody.holds(Permission.CAMPAIGNS_READ)


def test_roles_on_several_nodes_combine_per_permission() -> None:
    mixed = Principal.user(3, "binh", [Grant(Role.VIEWER, 1), Grant(Role.MANAGER, 3)])
    assert visible(mixed, Permission.CAMPAIGNS_READ, TREE) == {1, 2, 3, 4, 5}
    assert visible(mixed, Permission.FRAMES_WRITE, TREE) == {3}


def test_a_token_holds_its_scopes_on_its_node() -> None:
    token = Principal.token(5, "mot-cua", ["campaigns:read", "exports:write"], 2)
    assert allowed(token, Permission.EXPORTS_WRITE, 5, TREE)
    assert not allowed(token, Permission.CAMPAIGNS_WRITE, 5, TREE)
    assert not allowed(token, Permission.CAMPAIGNS_READ, 3, TREE)


def test_ancestors_stop_at_a_cycle() -> None:
    assert ancestors(4, TREE) == [4, 2, 1]
    assert ancestors(1, {1: 2, 2: 1}) == [1, 2]
    assert ancestors(42, TREE) == [42]


def test_phone_masks_keep_only_the_ends() -> None:
    assert mask_phone("+84912345678") == "+84******678"
    assert mask_phone("+8491") == "*****"


@st.composite
def trees(draw: st.DrawFn) -> dict[int, int | None]:
    size = draw(st.integers(1, 12))
    # Each agency's parent has a smaller id (or none): a forest, as the service stores it.
    return {i: draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None for i in range(size)}


@given(trees(), st.lists(st.tuples(st.sampled_from(list(Role)), st.one_of(st.none(), st.integers(0, 11))),
                         max_size=3), st.sampled_from(list(Permission)))
def test_visible_is_exactly_where_allowed_and_closed_downwards(tree: dict[int, int | None],
                                                               grants: list[tuple[Role, int | None]],
                                                               permission: Permission) -> None:
    principal = Principal.user(1, "x", [Grant(role, node) for role, node in grants])
    seen = visible(principal, permission, tree)
    expected = {a for a in tree if allowed(principal, permission, a, tree)}
    assert (set(tree) if seen is None else seen) == expected
    for agency, parent in tree.items():       # whoever may act on a node may act on its children
        if parent is not None and parent in expected:
            assert agency in expected
