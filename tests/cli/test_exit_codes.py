"""The CLI maps error classes to exit codes; the library's errors carry none."""

from __future__ import annotations

from mloop import errors
from mloop.cli.exit_codes import EXIT_CODES, exit_code


def test_every_error_class_has_a_distinct_exit_code_or_inherits_one() -> None:
    classes = [c for n in errors.__all__ if isinstance(c := getattr(errors, n), type)]
    assert all(exit_code(c("x")) >= 1 for c in classes)
    assert exit_code(errors.FilterSyntaxError("x")) == exit_code(errors.InvalidInput("x")) == 2
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)
    assert exit_code(errors.GateFailed("refused", report=None)) == 7


def test_the_library_knows_no_exit_codes_or_http_statuses() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type):
            assert not hasattr(cls, "exit_code") and not hasattr(cls, "http_status"), name


def test_path_arguments_no_file_system_can_hold_are_usage_errors(tmp_path: object) -> None:
    from typer.testing import CliRunner

    from mloop.cli.app import app

    runner = CliRunner()
    for args in (["init", "a\x00b"], ["data", "add", "t\x00.csv", "--name", "x"], ["demo", "--dir", "d\x00"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "NUL byte" in result.output, (args, result.output, result.exception)
