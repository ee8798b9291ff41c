"""Run every benchmark: ``python -m bench`` (or ``make bench``)."""

from __future__ import annotations

from . import overhead, report_scale


def main() -> None:
    for module in (overhead, report_scale):
        print(f"== {module.__name__}")
        module.main()


if __name__ == "__main__":
    main()
