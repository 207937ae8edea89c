"""Checks a request's parameters against its catalogue entry and converts them to Python values.

Two input shapes arrive: JSON objects (TC3 POST; values keep their JSON types) and flat string
maps (v1 GET/form and TC3 GET, where arrays are spelled `Filters.0.Values.1`). Both come out
as one dict of typed values, or an ApiError naming the field: MissingParameter,
UnknownParameter, or InvalidParameter for a value of the wrong type.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from cfs_reference.catalogue import (
    BOOL,
    INT64,
    STRING,
    STRINGS,
    STRUCTURES,
    UINT64,
    Action,
)
from cfs_reference.errors import ApiError

UINT64_MAX = 2**64 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
BOOL_WORDS = MappingProxyType({"true": True, "false": False})


def validate_json(action: Action, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the body of a JSON request."""
    return _validate(action, params, from_text=False)


def validate_flat(action: Action, flat: Mapping[str, str]) -> dict[str, Any]:
    """Validate a flat string map (query string / form), after unflattening `A.0.B` keys."""
    return _validate(action, unflatten(flat), from_text=True)


def unflatten(flat: Mapping[str, str]) -> dict[str, Any]:
    """{'Filters.0.Name': 'x', 'Filters.0.Values.0': 'y'} -> {'Filters': [{'Name': 'x', 'Values': ['y']}]}"""
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node: dict[str, Any] = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ApiError("InvalidParameter", f"parameter {key!r} mixes a value and a list")
        if parts[-1] in node:
            raise ApiError("InvalidParameter", f"parameter {key!r} is given twice")
        node[parts[-1]] = value
    return {key: _lists_from_indexes(key, value) for key, value in tree.items()}


def _lists_from_indexes(name: str, node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        indexes = sorted(int(key) for key in node)
        if indexes != list(range(len(indexes))):
            raise ApiError("InvalidParameter", f"{name} indexes must be 0..{len(indexes) - 1}")
        return [_lists_from_indexes(f"{name}.{i}", node[str(i)]) for i in indexes]
    return {key: _lists_from_indexes(f"{name}.{key}", value) for key, value in node.items()}


def _validate(action: Action, params: Mapping[str, Any], from_text: bool) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise ApiError("InvalidParameter", "the request body must be a JSON object")
    for name in params:
        if action.param(name) is None:
            allowed = ", ".join(p.name for p in action.params) or "none"
            raise ApiError(
                "UnknownParameter",
                f"the parameter {name!r} is not recognized by {action.name} "
                f"({action.version}); allowed: {allowed}",
            )
    result: dict[str, Any] = {}
    for param in action.params:
        if param.name in params and params[param.name] is None:  # every parameter's "允许NULL" is "否"
            raise ApiError("InvalidParameter", f"{param.name} must not be null; leave it out instead")
        if param.name not in params:
            if param.required:
                raise ApiError(
                    "MissingParameter",
                    f"the request is missing the required parameter {param.name} ({param.type})",
                )
            continue
        result[param.name] = _convert(param.name, param.type, params[param.name], from_text)
    return result


def _convert(name: str, type_: str, value: Any, from_text: bool) -> Any:
    if type_ == STRING:
        if isinstance(value, str):
            return value
        raise _wrong_type(name, type_, value)
    if type_ in (UINT64, INT64):
        return _integer(name, type_, value, from_text)
    if type_ == BOOL:
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str) and value.lower() in BOOL_WORDS:
            return BOOL_WORDS[value.lower()]
        raise _wrong_type(name, type_, value)
    if type_ == STRINGS:
        items = _as_list(name, type_, value)
        return [_convert(f"{name}.{i}", STRING, item, from_text) for i, item in enumerate(items)]
    fields = STRUCTURES[type_]
    return [
        _structure(f"{name}.{i}", fields, item, from_text)
        for i, item in enumerate(_as_list(name, type_, value))
    ]


def _integer(name: str, type_: str, value: Any, from_text: bool) -> int:
    if isinstance(value, bool):
        raise _wrong_type(name, type_, value)
    if from_text and isinstance(value, str):
        try:
            value = int(value, 10)
        except ValueError:
            raise _wrong_type(name, type_, value) from None
    if not isinstance(value, int):
        raise _wrong_type(name, type_, value)
    low, high = (0, UINT64_MAX) if type_ == UINT64 else (INT64_MIN, INT64_MAX)
    if not low <= value <= high:
        raise ApiError("InvalidParameter", f"{name}={value} is out of the {type_} range {low}..{high}")
    return value


def _as_list(name: str, type_: str, value: Any) -> list:
    if isinstance(value, list):
        return value
    raise _wrong_type(name, type_, value)


def _structure(name: str, fields: tuple, value: Any, from_text: bool) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ApiError("InvalidParameter", f"{name} must be an object with {_field_names(fields)}")
    known = {field for field, _, _ in fields}
    for key in value:
        if key not in known:
            raise ApiError(
                "UnknownParameter", f"{name}.{key} is not recognized; allowed: {_field_names(fields)}"
            )
    result = {}
    for field, type_, required in fields:
        if field not in value:
            if required:
                raise ApiError("MissingParameter", f"the request is missing {name}.{field} ({type_})")
            continue
        result[field] = _convert(f"{name}.{field}", type_, value[field], from_text)
    return result


def _field_names(fields: tuple) -> str:
    return ", ".join(field for field, _, _ in fields)


def _wrong_type(name: str, type_: str, value: Any) -> ApiError:
    shown = value if isinstance(value, str | int | float | bool) else type(value).__name__
    return ApiError("InvalidParameter", f"{name} must be of type {type_}, got {shown!r}")
