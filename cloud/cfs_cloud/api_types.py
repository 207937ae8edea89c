"""The shape of what the CFS API sends and takes: JSON objects, keyed by the docs' field names."""

from typing import Any

ApiObject = dict[str, Any]
