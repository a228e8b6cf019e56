"""Update sets: the XML format of DESIGN §5 and the signed manifest of DESIGN §4.

Pure functions over text and streams; the database-backed capture, import, preview
and commit build on them.
"""

from ._xml_read import read_update_set
from ._xml_write import write_update_set
from .manifest import MANIFEST_FORMAT, ManifestEntry, manifest_payload
from .record_xml import entry_to_record, payload_to_record, record_to_payload
from .xmlformat import (
    ACTION_DELETE,
    ACTION_INSERT_OR_UPDATE,
    FORMAT,
    LIMIT_PROPERTIES,
    ImportLimits,
    ManifestSignature,
    UpdateEntry,
    UpdateSetHeader,
)

__all__ = [
    "ACTION_DELETE",
    "ACTION_INSERT_OR_UPDATE",
    "FORMAT",
    "LIMIT_PROPERTIES",
    "MANIFEST_FORMAT",
    "ImportLimits",
    "ManifestEntry",
    "ManifestSignature",
    "UpdateEntry",
    "UpdateSetHeader",
    "entry_to_record",
    "manifest_payload",
    "payload_to_record",
    "read_update_set",
    "record_to_payload",
    "write_update_set",
]
