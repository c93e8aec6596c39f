"""The adaptive draft length: backs off when drafts fail, drafts long when they pass."""

from lsp_server.engine.gamma import GammaController, expected_tokens


def run(ctl: GammaController, alpha_hits: float, rounds: int = 200) -> list[int]:
    chosen = []
    ctl.observe_plain(10.0)
    for i in range(rounds):
        g = ctl.choose()
        chosen.append(g)
        if g == 0:
            ctl.observe_plain(10.0)
        else:
            accepted = g if (i % 10) < alpha_hits * 10 else 0
            ctl.observe_round(g, accepted, draft_ms=1.0 * g, verify_ms=11.0)
    return chosen


def test_useless_draft_is_only_probed_rarely():
    chosen = run(GammaController(max_gamma=8), alpha_hits=0.0)
    late = chosen[50:]
    assert sum(g > 0 for g in late) <= len(late) // 16 + 1  # probes at most every 16 plain steps
    assert max(late) == 1


def test_good_draft_is_used_at_length():
    chosen = run(GammaController(max_gamma=8), alpha_hits=1.0)
    assert min(chosen[20:]) >= 4


def test_first_step_calibrates_and_fixed_mode_ignores_estimates():
    assert GammaController(max_gamma=6).choose() == 0  # no measured step cost yet
    fixed = GammaController(max_gamma=5, fixed=True)
    assert fixed.choose() == 5


def test_expected_tokens():
    assert expected_tokens(1.0, 4) == 5.0
    assert abs(expected_tokens(0.5, 2) - 1.75) < 1e-9
