"""A real editor end to end: Neovim 0.12 shows our inline completion as ghost text and accepts it.

Neovim runs headless and embedded, driven through pynvim; it starts `python -m lsp_server serve`
itself from an init.lua like the one in docs/editors-neovim.md. The test types in insert mode, waits
for the ghost text (extmarks of the namespace `nvim.lsp.inline_completion`), accepts it with
`vim.lsp.inline_completion.get()` and checks the buffer. The run is printed (`pytest -s`) and written
to docs/editor-runs/neovim.txt.

Neovim 0.12.4 comes from scripts/install_neovim.sh (Debian sid packages, unpacked and patched), run
once per session. The test skips only when that script says this machine cannot install it (exit 2).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pynvim  # a dev dependency: missing is an error, not a reason to skip
import pytest

from tests.editor_support import DEMO_TARGET, REPO, SOURCE, descendants, kill_tree, tail

pytestmark = pytest.mark.editor

INSTALL = REPO / "scripts" / "install_neovim.sh"
NVIM_DIR = REPO / ".tools" / "nvim12"
RUN_RECORD = REPO / "docs" / "editor-runs" / "neovim.txt"
NAMESPACE = "nvim.lsp.inline_completion"

CURSOR_LINE = 6  # 1-based: the indented empty line inside fibonacci(), where we type
# What we type, one chunk at a time. The first chunk usually brings ghost text; when a completion
# comes back empty (the tiny random models often produce nothing useful), the next chunk changes the
# context and Neovim asks again.
CHUNKS = ["if n", " <", "= ", "1", ":"]

READY_TIMEOUT = 120.0  # model loading on the CPU
GHOST_TIMEOUT = 60.0  # from the first keystroke to ghost text, all retries included
RETRY_AFTER = 6.0  # seconds without ghost text before the next chunk is typed
STABLE_FOR = 0.5  # ghost text must stay unchanged this long before it is accepted


@pytest.fixture(scope="session")
def nvim_path() -> str:
    """The Neovim 0.12.4 wrapper: reused when it already runs, else installed by the script."""
    wrapper = NVIM_DIR / "nvim"
    if _nvim_works(wrapper):
        return str(wrapper)
    proc = subprocess.run(["bash", str(INSTALL), str(NVIM_DIR)], capture_output=True, text=True, timeout=900)
    if proc.returncode == 2:  # the script's "cannot be done on this machine"
        reason = [line for line in proc.stderr.splitlines() if "unavailable here" in line] or [tail(proc.stderr, 1)]
        pytest.skip(f"Neovim 0.12.4 cannot be installed on this machine ({reason[-1]})")
    assert proc.returncode == 0, f"{INSTALL.name} failed ({proc.returncode}):\n{tail(proc.stderr, 30)}"
    path = proc.stdout.strip().splitlines()[-1]
    assert _nvim_works(Path(path)), f"{path} does not run"
    return path


def _nvim_works(path: Path) -> bool:
    if not os.access(path, os.X_OK):
        return False
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.startswith("NVIM v0.12.")


def server_options(request) -> dict:
    """The embedded demo models when they are in the checkout (real Python), else the tiny random pair."""
    if DEMO_TARGET.exists():
        return {}
    target, draft = request.getfixturevalue("pair")
    return {"target": str(target), "draft": str(draft), "device": "cpu", "maxTokens": 16}


def write_init_lua(path: Path, root: Path, options: dict, server_log: Path) -> None:
    """The user's config from docs/editors-neovim.md, plus a status handler the test can poll."""
    cmd = [sys.executable, "-m", "lsp_server", "serve", "--log-level", "DEBUG", "--log-file", str(server_log)]
    # no options: the server's own defaults, as for a user whose config has no init_options
    init_options = f"  init_options = {lua(options)},\n" if options else ""
    path.write_text(f"""
vim.lsp.config('speclsp', {{
  cmd = {lua(cmd)},
  -- the server imports lsp_server from this checkout
  cmd_cwd = {lua(str(REPO))},
  cmd_env = {{ PYTHONPATH = {lua(str(REPO))} }},
  filetypes = {{ 'python' }},
  root_dir = {lua(str(root))},
{init_options}  handlers = {{
    -- speclsp/status: loading, ready, busy, error; the test waits for 'ready'
    ['speclsp/status'] = function(_, result) vim.g.speclsp_state = result.state end,
  }},
}})
vim.lsp.enable('speclsp')
vim.lsp.inline_completion.enable(true)
""", encoding="utf-8")


def lua(value) -> str:
    """A Lua literal for strings, numbers, lists and string-keyed dicts (JSON's string escapes are Lua's too)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {lua(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "{ " + ", ".join(lua(v) for v in value) + " }"
    return json.dumps(value, ensure_ascii=False)


def test_neovim_shows_and_accepts_ghost_text(nvim_path, request, tmp_path, monkeypatch):
    options = server_options(request)
    source = tmp_path / "fib.py"
    source.write_text(SOURCE, encoding="utf-8")
    init_lua, server_log = tmp_path / "init.lua", tmp_path / "server.log"
    write_init_lua(init_lua, tmp_path, options, server_log)
    # Neovim's own state (lsp.log, shada) and any user config stay inside tmp_path.
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))

    t0 = time.monotonic()
    # -n: no swap file, or a stale one from an interrupted run blocks the next
    nvim = pynvim.attach("child", argv=[nvim_path, "-u", str(init_lua), "-i", "NONE", "-n", "--embed", "--headless"])
    nvim_pid = nvim.funcs.getpid()
    try:
        nvim.command(f"edit {source}")
        wait_until_ready(nvim, server_log, tmp_path)
        t_ready = time.monotonic() - t0

        ghost, row, col, typed = type_until_ghost_text(nvim, server_log, tmp_path)
        t_ghost = time.monotonic() - t0
        before = nvim.current.buffer[:]

        accepted = accept(nvim)
        assert accepted, "vim.lsp.inline_completion.get() found nothing to accept"
        after = wait_for_change(nvim, before)
        assert nvim.vars.get("speclsp_accepted") == ghost, "Neovim accepted another item than the one shown"

        # The buffer is the old one with exactly the ghost text inserted at the cursor.
        line = before[row]
        expected = "\n".join(before[:row] + [line[:col] + ghost + line[col:]] + before[row + 1:])
        assert "\n".join(after) == expected, f"ghost text {ghost!r} not inserted as shown: {after!r}"
        assert ghost in "\n".join(after)
        record_run(nvim, options, typed, ghost, after, t_ready, t_ghost)
    finally:
        # Neovim starts the server detached (its own session): it would outlive Neovim if it hangs,
        # so note the whole tree while Neovim is alive and kill what is left after quitting.
        tree = descendants(nvim_pid) | {nvim_pid}
        quit_nvim(nvim)
        kill_tree(tree)


# --- waiting on Neovim --------------------------------------------------------------------------


def wait_until_ready(nvim, server_log: Path, tmp: Path) -> None:
    """The client is attached to the buffer and the server reported its models loaded."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        attached = nvim.exec_lua("return #vim.lsp.get_clients({ name = 'speclsp', bufnr = 0 })")
        state = nvim.vars.get("speclsp_state")
        if attached and state == "ready":
            return
        if state == "error":
            break
        time.sleep(0.1)
    pytest.fail(f"server not ready (state {nvim.vars.get('speclsp_state')!r})\n{diagnostics(server_log, tmp)}")


GHOST_LUA = f"""
local ns = vim.api.nvim_get_namespaces()['{NAMESPACE}']
if not ns then return nil end
for _, m in ipairs(vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, {{ details = true }})) do
  local d = m[4]
  if d.virt_text then
    -- first line inline at the mark, the rest as virtual lines below it
    local lines = {{ table.concat(vim.tbl_map(function(c) return c[1] end, d.virt_text)) }}
    for _, vl in ipairs(d.virt_lines or {{}}) do
      table.insert(lines, table.concat(vim.tbl_map(function(c) return c[1] end, vl)))
    end
    local cursor = vim.api.nvim_win_get_cursor(0)
    return {{ text = table.concat(lines, '\\n'), row = m[2], col = m[3],
             cursor_row = cursor[1] - 1, cursor_col = cursor[2], mode = vim.api.nvim_get_mode().mode }}
  end
end
return nil
"""


def ghost_text(nvim) -> dict | None:
    """The ghost text on screen, when it is anchored at the cursor (not a stale one being re-shown)."""
    g = nvim.exec_lua(GHOST_LUA)
    if not g or not g["text"] or not g["mode"].startswith("i"):
        return None
    return g if (g["row"], g["col"]) == (g["cursor_row"], g["cursor_col"]) else None


def type_until_ghost_text(nvim, server_log: Path, tmp: Path) -> tuple[str, int, int, str]:
    """Enter insert mode at the end of CURSOR_LINE and type until ghost text shows and holds still.

    Neovim asks ~200 ms after the last keystroke and never cancels the older requests; the server's
    newest-request-wins answers superseded ones empty, so ghost text can vanish and come back. It is
    taken only once it has stayed the same for STABLE_FOR seconds.
    """
    nvim.input(f"{CURSOR_LINE}GA")
    typed, deadline = "", time.monotonic() + GHOST_TIMEOUT
    chunks = iter(CHUNKS)
    next_chunk_at = 0.0
    seen, seen_since = None, 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        g = ghost_text(nvim)
        if g is None:
            seen = None
            if now >= next_chunk_at:
                chunk = next(chunks, None)
                if chunk is not None:
                    nvim.input(chunk)
                    typed += chunk
                next_chunk_at = now + RETRY_AFTER
        elif seen is None or (g["text"], g["row"], g["col"]) != (seen["text"], seen["row"], seen["col"]):
            seen, seen_since = g, now
        elif now - seen_since >= STABLE_FOR:
            return g["text"], g["row"], g["col"], typed
        time.sleep(0.05)
    pytest.fail(f"no ghost text within {GHOST_TIMEOUT:.0f} s after typing {typed!r}\n{diagnostics(server_log, tmp)}")


ACCEPT_LUA = """
-- Accept exactly as a user's Tab mapping would: get() in insert mode. on_accept only records the
-- item Neovim is about to insert and hands it back unchanged.
vim.g.speclsp_accepted = vim.NIL
return vim.lsp.inline_completion.get({
  on_accept = function(item) vim.g.speclsp_accepted = item.insert_text; return item end,
})
"""


def accept(nvim) -> bool:
    return bool(nvim.exec_lua(ACCEPT_LUA))


def wait_for_change(nvim, before: list[str], timeout: float = 5.0) -> list[str]:
    """get() applies the item on the next event-loop turn: wait for the buffer to change."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = nvim.current.buffer[:]
        if lines != before:
            return lines
        time.sleep(0.05)
    pytest.fail(f"buffer unchanged after accepting (item {nvim.vars.get('speclsp_accepted')!r})")


def diagnostics(server_log: Path, tmp: Path) -> str:
    """The ends of the server's log and Neovim's LSP log, for a failure message."""
    parts = []
    for log in (server_log, tmp / "xdg_state_home" / "nvim" / "lsp.log"):
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else "(missing)"
        parts.append(f"--- {log.name} ---\n{tail(text, 20)}")
    return "\n".join(parts)


# --- the record of the run ----------------------------------------------------------------------


def record_run(nvim, options: dict, typed: str, ghost: str, after: list[str], t_ready: float,
               t_ghost: float) -> None:
    """Print the run and keep it in docs/editor-runs/neovim.txt, where the docs point."""
    version = nvim.exec_lua("return tostring(vim.version())")
    models = "embedded demo models" if not options else "tiny random test pair (noise text: proves the plumbing)"
    text = "\n".join([
        "# Neovim end-to-end run (tests/test_editor_neovim.py)",
        f"date:       {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"neovim:     {version} (headless, driven by pynvim)",
        f"models:     {models}",
        f"typed:      {typed!r} at the end of line {CURSOR_LINE}",
        f"ready:      {t_ready:.1f} s after start (models loaded)",
        f"ghost text: {t_ghost - t_ready:.1f} s after ready",
        "",
        "ghost text (as shown, repr):",
        f"  {ghost!r}",
        "",
        "buffer after accepting with vim.lsp.inline_completion.get():",
        *(f"  {i:>2} | {line}" for i, line in enumerate(after, 1)),
        "",
    ])
    print("\n" + text)
    RUN_RECORD.parent.mkdir(parents=True, exist_ok=True)
    RUN_RECORD.write_text(text, encoding="utf-8")


# --- cleanup ------------------------------------------------------------------------------------


def quit_nvim(nvim) -> None:
    """:qa! closes the channel before it answers, so the error that follows is the expected one."""
    with contextlib.suppress(Exception):  # any transport error here means Neovim is gone
        nvim.command("qa!")
    with contextlib.suppress(Exception):
        nvim.close()


