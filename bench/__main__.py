"""Run every benchmark: ``python -m bench`` (or ``make bench``)."""

from __future__ import annotations

from . import load, overhead, report_scale


def main() -> None:
    for module in (overhead, report_scale, load):
        print(f"== {module.__name__}")
        module.main()


if __name__ == "__main__":
    main()
