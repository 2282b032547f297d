"""The benchmarks (BENCHMARKS.md): run as `.venv/bin/python bench/admission.py` or
`.venv/bin/python -m bench.admission`; see hack/__init__.py for how they import each other."""
