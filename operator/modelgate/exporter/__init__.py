"""modelgate's reference drift exporter, for model servers to import (needs only prometheus_client).

    from modelgate.exporter import DriftExporter, ReferenceProfile

See `modelgate.exporter.exporter` for the exported series and `modelgate.exporter.psi` for PSI.
"""

from modelgate.exporter.exporter import DriftExporter, DriftExporterSet, LiveWindow
from modelgate.exporter.psi import MAJOR_SHIFT, STABLE, Bins, psi
from modelgate.exporter.reference import ReferenceHistogram, ReferenceProfile

__all__ = [
    "MAJOR_SHIFT",
    "STABLE",
    "Bins",
    "DriftExporter",
    "DriftExporterSet",
    "LiveWindow",
    "ReferenceHistogram",
    "ReferenceProfile",
    "psi",
]
