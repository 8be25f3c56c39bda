from tests.conftest import run_cli


def test_valid_domain_passes(domain):
    res = run_cli("validate", cwd=domain)
    assert res.code == 0, res.output
    assert "0 error(s)" in res.out
