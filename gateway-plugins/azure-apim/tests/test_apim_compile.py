"""Every C# policy expression compiles with Mono against the stub of APIM's context model,
in C# 7 mode, with warnings as errors; and the check does catch broken expressions."""

from __future__ import annotations

from pathlib import Path

import pytest
from apim_emulator import CompileError, compile_expressions
from apim_policy import all_policy_files, load_policy, load_policy_text


def test_every_expression_compiles(toolchain: object, tmp_path: Path) -> None:
    policies = [load_policy(p) for p in all_policy_files()]
    exe, output = compile_expressions(policies, tmp_path)
    assert exe.is_file()
    assert "error" not in output.lower()
    assert sum(len(p.expressions) for p in policies) >= 25


XML_LINE = "broken-fragment.xml(3,"


@pytest.mark.parametrize(
    ("code", "message", "where"),
    [
        # a member APIM's context does not have
        ('@(context.Request.Form.GetValueOrDefault("a", ""))', "Form", XML_LINE),
        # beyond C# 7.0 (the default literal is 7.1)
        ("@{ int n = default; return n; }", "CS1644", XML_LINE),
        # a type error inside the expression
        ("@(context.Response.StatusCode.Length)", "Length", XML_LINE),
        # a block that does not return on every path (reported at the generated method)
        (
            '@{ if (context.Request.Method == "POST") { return "x"; } }',
            "CS0161",
            "broken_fragment_0",
        ),
    ],
)
def test_broken_expressions_fail_with_their_location(
    toolchain: object, tmp_path: Path, code: str, message: str, where: str
) -> None:
    text = f'<fragment>\n    <set-variable name="x"\n        value="{code}" />\n</fragment>\n'
    policy = load_policy_text(text, "broken-fragment.xml")
    with pytest.raises(CompileError) as failure:
        compile_expressions([policy], tmp_path)
    assert where in str(failure.value)
    assert message in str(failure.value)
