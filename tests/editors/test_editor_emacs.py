"""A real editor end to end: Emacs with lsp-mode 10 (inline completion) and with eglot (completion).

Emacs runs in batch mode (`emacs --batch -Q`) on an elisp driver that the test writes: it opens a
Python file in python-mode, starts `python -m lsp_server serve` through the client's own
configuration (the one docs/editors-emacs.md gives), waits until the client reports the server
initialized and the server reports its models ready (`speclsp/status`), types into a function body
and then:

- lsp-mode: calls `lsp-inline-completion-display`, reads the overlay (the ghost text) and accepts it
  with `lsp-inline-completion-accept`, which also runs the item's `speclsp.accepted` command;
- eglot: calls `completion-at-point`, which inserts the fallback `textDocument/completion` item.

The driver prints one JSON line (`SPECLSP-RESULT {...}`); the test checks it and writes the run to
docs/editor-runs/emacs.txt (one section per client). Emacs 28 (apt) and lsp-mode 10 + eglot 1.9
(Debian packages unpacked into .tools/emacs-lsp) come from scripts/install_emacs_lsp.sh, run once
per session; the test skips only when that script says this machine cannot install them (exit 2).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.editor_support import (
    DEMO_TARGET,
    REPO,
    SOURCE,
    descendants,
    inserted_by,
    kill_tree,
    run_record_path,
    tail,
)

pytestmark = pytest.mark.editor

INSTALL = REPO / "scripts" / "install_emacs_lsp.sh"
TOOLS_DIR = REPO / ".tools" / "emacs-lsp"
RUN_RECORD = run_record_path("emacs.txt")
RESULT_TAG = "SPECLSP-RESULT "

CURSOR_LINE = 6  # 1-based: the indented empty line inside fibonacci(), where the driver types
# What the driver types, one chunk at a time. The first chunk usually brings a suggestion; when one
# comes back empty, the next chunk changes the context and the driver asks again.
CHUNKS = ["if n", " <", "= ", "1", ":"]

EMACS_TIMEOUT = 120.0  # the whole batch run: Emacs start, model loading on the CPU, all attempts
READY_TIMEOUT = 90  # inside the driver: server initialized and models loaded


@pytest.fixture(scope="session")
def emacs_load_path() -> str:
    """DEST/load-path.el of the install script (it returns at once when everything is there)."""
    proc = subprocess.run(["bash", str(INSTALL), str(TOOLS_DIR)], capture_output=True, text=True, timeout=900)
    if proc.returncode == 2:  # the script's "cannot be done on this machine"
        reason = [line for line in proc.stderr.splitlines() if "unavailable here" in line] or [tail(proc.stderr, 1)]
        pytest.skip(f"Emacs with lsp-mode 10 cannot be installed on this machine ({reason[-1]})")
    assert proc.returncode == 0, f"{INSTALL.name} failed ({proc.returncode}):\n{tail(proc.stderr, 30)}"
    path = proc.stdout.strip().splitlines()[-1]
    assert Path(path).is_file(), f"{INSTALL.name} printed {path!r}, which is not a file"
    return path


def server_options(request) -> dict:
    """The embedded demo models when they are in the checkout (real Python), else the tiny random pair."""
    if DEMO_TARGET.exists():
        return {}
    target, draft = request.getfixturevalue("pair")
    return {"target": str(target), "draft": str(draft), "device": "cpu", "maxTokens": 16}


def server_command(server_log: Path) -> list[str]:
    return [sys.executable, "-m", "lsp_server", "serve", "--log-level", "DEBUG", "--log-file", str(server_log)]


# --- elisp literals -----------------------------------------------------------------------------


def el(value) -> str:
    """An elisp literal: strings, numbers, booleans/None (t/nil) and lists (as `(list ...)`)."""
    if value is None or value is False:
        return "nil"
    if value is True:
        return "t"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "(list " + " ".join(el(v) for v in value) + ")"
    raise TypeError(f"no elisp literal for {type(value).__name__}")


def el_plist(options: dict) -> str:
    """A plist with keyword keys, which both lsp-mode and eglot send as a JSON object."""
    return "(list " + " ".join(f":{k} {el(v)}" for k, v in options.items()) + ")"


def fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_]+@", template)
    assert not left, f"placeholders left unfilled: {left}"
    return template


# Shared by both drivers: typing in chunks, waiting, the result line, the log files.
COMMON_EL = r"""
(defvar speclsp-test-state nil "The last state from speclsp/status.")
(defvar speclsp-test-t0 (float-time))
(defvar speclsp-test-result nil "Alist printed as JSON at the end.")

(defun speclsp-test-put (key value)
  (setq speclsp-test-result (cons (cons key value) (assoc-delete-all key speclsp-test-result))))

(defun speclsp-test-elapsed () (/ (round (* 10 (- (float-time) speclsp-test-t0))) 10.0))

(defun speclsp-test-wait (predicate seconds what)
  "Run the event loop until PREDICATE holds; signal an error after SECONDS."
  (let ((deadline (+ (float-time) seconds)))
    (while (and (not (funcall predicate)) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (unless (funcall predicate)
      (error "Timed out after %s s waiting for %s (speclsp/status: %s)" seconds what speclsp-test-state))))

(defun speclsp-test-goto-cursor-line ()
  (goto-char (point-min))
  (forward-line (1- @CURSOR_LINE@))
  (end-of-line))

(defun speclsp-test-position ()
  "Point as (LINE . COLUMN), both 0-based, COLUMN in characters."
  (cons (1- (line-number-at-pos)) (- (point) (line-beginning-position))))

(defun speclsp-test-finish (status)
  "Print the result line, save the client's log and exit with STATUS."
  (speclsp-test-put "emacs" emacs-version)
  (speclsp-test-put "elapsed" (speclsp-test-elapsed))
  (princ (concat "@RESULT_TAG@" (json-encode speclsp-test-result) "\n"))
  (kill-emacs status))
"""

LSP_MODE_EL = r""";;; driver-lsp-mode.el --- lsp-mode 10 inline completion against speclsp  -*- lexical-binding: t -*-
(setq user-emacs-directory @EMACS_D@
      backtrace-on-error-noninteractive nil)
(require 'json)
(require 'python)
(require 'lsp-mode)
(require 'lsp-inline-completion)
@COMMON@
;; --- the configuration of docs/editors-emacs.md ---------------------------------------------
(lsp-register-client
 (make-lsp-client
  :new-connection (lsp-stdio-connection @COMMAND@)
  :activation-fn (lsp-activate-on "python")
  :server-id 'speclsp
  :add-on? t
  :environment-fn (lambda () (list (cons "PYTHONPATH" @REPO@)))
  :initialization-options @INIT_OPTIONS@
  :notification-handlers
  (ht ("speclsp/status" (lambda (_workspace params) (setq speclsp-test-state (gethash "state" params)))))))

;; --- for the test only ----------------------------------------------------------------------
(setq lsp-session-file @SESSION@
      lsp-client-packages nil             ; look for no other Python server
      lsp-restart 'ignore                 ; a crashed server ends the run instead of asking
      lsp-enable-snippet nil              ; no yasnippet here
      lsp-diagnostics-provider :none      ; no flymake checkers here
      lsp-response-timeout 60
      lsp-inline-completion-enable nil    ; no requests from the idle timer: the driver asks itself
      lsp-log-io t)

(defun speclsp-test-workspace ()
  (seq-find (lambda (w) (eq (lsp--client-server-id (lsp--workspace-client w)) 'speclsp)) (lsp-workspaces)))

(defun speclsp-test-save-io-log ()
  (dolist (buf (buffer-list))
    (when (string-prefix-p "*lsp-log: speclsp" (buffer-name buf))
      (with-current-buffer buf (write-region nil nil @IO_LOG@ nil 'silent)))))

(condition-case err
    (progn
      (find-file @FILE@)
      (unless (derived-mode-p 'python-mode) (error "%s opened in %s, not python-mode" (buffer-name) major-mode))
      (lsp-workspace-folders-add @ROOT@)  ; the project root, so lsp-mode does not ask for one
      (lsp)
      (speclsp-test-wait (lambda () (and (speclsp-test-workspace)
                                         (eq (lsp--workspace-status (speclsp-test-workspace)) 'initialized)))
                         @READY_TIMEOUT@ "lsp-mode to initialize the server")
      (speclsp-test-put "initialized" (speclsp-test-elapsed))
      (speclsp-test-wait (lambda () (member speclsp-test-state '("ready" "error"))) @READY_TIMEOUT@ "the models")
      (when (equal speclsp-test-state "error") (error "speclsp reported an error while loading"))
      (speclsp-test-put "ready" (speclsp-test-elapsed))
      (speclsp-test-put "lsp_mode" (lsp-version))
      (speclsp-test-goto-cursor-line)
      (let ((chunks @CHUNKS@) (typed "") attempts)
        (while (and chunks (not (lsp-inline-completion--active-p)))
          (insert (car chunks))
          (setq typed (concat typed (pop chunks)))
          (let ((position (speclsp-test-position))
                (before (buffer-substring-no-properties (point-min) (point-max))))
            (lsp-inline-completion-display)           ; what M-x lsp-inline-completion-display does
            (ignore-errors                            ; the overlay is there when display returns
              (speclsp-test-wait #'lsp-inline-completion--active-p 2 "the overlay"))
            (push (list (cons "typed" typed) (cons "items" (length lsp-inline-completion--items))
                        (cons "at" (speclsp-test-elapsed)))
                  attempts)
            (when (lsp-inline-completion--active-p)
              (speclsp-test-put "typed" typed)
              (speclsp-test-put "line" (car position))
              (speclsp-test-put "column" (cdr position))
              (speclsp-test-put "before" before))))
        (speclsp-test-put "attempts" (vconcat (reverse attempts))))
      (unless (lsp-inline-completion--active-p)
        (error "No overlay after typing all chunks"))
      (speclsp-test-put "shown_at" (speclsp-test-elapsed))
      (let ((item (elt lsp-inline-completion--items lsp-inline-completion--current)))
        (speclsp-test-put "item" item)
        (speclsp-test-put "suggestion" (gethash "insertText" item)))
      ;; the ghost text as displayed: the overlay's after-string, without its text properties
      (speclsp-test-put "shown" (substring-no-properties
                                 (or (overlay-get lsp-inline-completion--overlay 'after-string) "")))
      (lsp-inline-completion-accept)                 ; what C-<return> on the overlay does
      (speclsp-test-put "after" (buffer-substring-no-properties (point-min) (point-max)))
      (speclsp-test-put "point" (let ((p (speclsp-test-position))) (list (car p) (cdr p))))
      (speclsp-test-put "stats" (lsp-request "workspace/executeCommand" (list :command "speclsp.stats")))
      (let ((proc (lsp--workspace-proc (speclsp-test-workspace))))
        (lsp-workspace-shutdown (speclsp-test-workspace))
        (ignore-errors (speclsp-test-wait (lambda () (not (process-live-p proc))) 10 "the server to exit"))
        (speclsp-test-put "server_exit" (if (process-live-p proc) "still running" (process-exit-status proc))))
      (speclsp-test-save-io-log)
      (speclsp-test-finish 0))
  (error
   (speclsp-test-put "error" (error-message-string err))
   (ignore-errors (speclsp-test-save-io-log))
   (speclsp-test-finish 1)))
"""

EGLOT_EL = r""";;; driver-eglot.el --- eglot completion-at-point against speclsp  -*- lexical-binding: t -*-
(setq user-emacs-directory @EMACS_D@
      backtrace-on-error-noninteractive nil)
(require 'json)
(require 'python)
(require 'eglot)
@COMMON@
;; --- the configuration of docs/editors-emacs.md ---------------------------------------------
(add-to-list 'eglot-server-programs
             (cons 'python-mode (append @COMMAND@ (list :initializationOptions @INIT_OPTIONS@))))
(cl-defmethod eglot-handle-notification (_server (_method (eql speclsp/status)) &key state &allow-other-keys)
  (setq speclsp-test-state state))

;; --- for the test only ----------------------------------------------------------------------
(setenv "PYTHONPATH" @REPO@)   ; eglot's server inherits Emacs's environment
(setq eglot-sync-connect 60
      eglot-connect-timeout @READY_TIMEOUT@
      eglot-events-buffer-size 2000000)
(defvar speclsp-test-items nil "The items of the last textDocument/completion answer.")
(advice-add 'jsonrpc-request :around
            (lambda (fn conn method &rest rest)
              (let ((answer (apply fn conn method rest)))
                (when (eq method :textDocument/completion)
                  (setq speclsp-test-items (if (vectorp answer) answer (plist-get answer :items))))
                answer)))

(defun speclsp-test-save-io-log ()
  (let ((server (eglot-current-server)))
    (when server
      (with-current-buffer (jsonrpc-events-buffer server) (write-region nil nil @IO_LOG@ nil 'silent)))))

(condition-case err
    (progn
      (find-file @FILE@)
      (unless (derived-mode-p 'python-mode) (error "%s opened in %s, not python-mode" (buffer-name) major-mode))
      ;; a transient project at the file's folder, so eglot does not ask for one
      (let ((project-find-functions (list (lambda (_dir) (cons 'transient @ROOT@)))))
        (apply #'eglot (eglot--guess-contact)))
      (speclsp-test-wait (lambda () (eglot-current-server)) @READY_TIMEOUT@ "eglot to initialize the server")
      (speclsp-test-put "initialized" (speclsp-test-elapsed))
      (speclsp-test-wait (lambda () (member speclsp-test-state '("ready" "error"))) @READY_TIMEOUT@ "the models")
      (when (equal speclsp-test-state "error") (error "speclsp reported an error while loading"))
      (speclsp-test-put "ready" (speclsp-test-elapsed))
      (speclsp-test-put "eglot" (with-temp-buffer
                                  (insert-file-contents (locate-library "eglot.el"))
                                  (and (re-search-forward "^;; Version: \\(.*\\)$" nil t) (match-string 1))))
      (unless (memq #'eglot-completion-at-point completion-at-point-functions)
        (error "eglot-completion-at-point is not in completion-at-point-functions"))
      (speclsp-test-goto-cursor-line)
      (let ((chunks @CHUNKS@) (typed "") attempts done)
        (while (and chunks (not done))
          (insert (car chunks))
          (setq typed (concat typed (pop chunks)))
          (let ((position (speclsp-test-position))
                (before (buffer-substring-no-properties (point-min) (point-max))))
            (setq speclsp-test-items nil)
            (completion-at-point)                     ; what M-TAB / C-M-i does
            (setq done (and (> (length speclsp-test-items) 0)
                            (not (equal before (buffer-substring-no-properties (point-min) (point-max))))))
            (push (list (cons "typed" typed) (cons "items" (length speclsp-test-items))
                        (cons "at" (speclsp-test-elapsed)))
                  attempts)
            (when done
              (speclsp-test-put "typed" typed)
              (speclsp-test-put "line" (car position))
              (speclsp-test-put "column" (cdr position))
              (speclsp-test-put "before" before)
              (speclsp-test-put "item" (aref speclsp-test-items 0)))))
        (speclsp-test-put "attempts" (vconcat (reverse attempts)))
        (unless done (error "completion-at-point inserted nothing after typing all chunks")))
      (speclsp-test-put "inserted_at" (speclsp-test-elapsed))
      (speclsp-test-put "after" (buffer-substring-no-properties (point-min) (point-max)))
      (speclsp-test-put "point" (let ((p (speclsp-test-position))) (list (car p) (cdr p))))
      (speclsp-test-save-io-log)
      (let ((proc (jsonrpc--process (eglot-current-server))))
        (eglot-shutdown (eglot-current-server))
        (speclsp-test-put "server_exit" (if (process-live-p proc) "still running" (process-exit-status proc))))
      (speclsp-test-finish 0))
  (error
   (speclsp-test-put "error" (error-message-string err))
   (ignore-errors (speclsp-test-save-io-log))
   (speclsp-test-finish 1)))
"""


def write_driver(template: str, tmp: Path, source: Path, options: dict, server_log: Path, name: str) -> Path:
    common = fill(COMMON_EL, CURSOR_LINE=str(CURSOR_LINE), RESULT_TAG=RESULT_TAG)
    driver = tmp / f"driver-{name}.el"
    driver.write_text(fill(
        template, COMMON=common, EMACS_D=el(str(tmp / "emacs.d") + "/"), COMMAND=el(server_command(server_log)),
        REPO=el(str(REPO)), INIT_OPTIONS=el_plist(options) if options else "nil", SESSION=el(str(tmp / "lsp-session")),
        IO_LOG=el(str(tmp / f"{name}-io.log")), FILE=el(str(source)), ROOT=el(str(tmp) + "/"),
        READY_TIMEOUT=str(READY_TIMEOUT), CHUNKS=el(CHUNKS),
    ), encoding="utf-8")
    return driver


# --- running Emacs ------------------------------------------------------------------------------


def run_emacs(load_path: str, driver: Path, tmp: Path) -> tuple[dict, str, float]:
    """Run the driver in `emacs --batch -Q`; return its result, its output and the wall time.

    Emacs starts the server in a session of its own, so it is not in Emacs's process group and would
    outlive a killed Emacs: the whole tree is noted while Emacs runs and what is left is killed."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out_path, err_path = tmp / "emacs.stdout", tmp / "emacs.stderr"
    t0 = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(["emacs", "--batch", "-Q", "-l", load_path, "-l", str(driver)],
                                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        tree: set[int] = set()
        try:
            while proc.poll() is None and time.monotonic() - t0 < EMACS_TIMEOUT:
                tree |= descendants(proc.pid)
                time.sleep(0.1)
            timed_out = proc.poll() is None
            if timed_out:
                tree |= descendants(proc.pid)
                proc.kill()
            proc.wait(timeout=10)
        finally:
            kill_tree(tree - {proc.pid})
    wall = time.monotonic() - t0
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    output = f"--- stdout ---\n{tail(stdout, 40)}\n--- stderr ---\n{tail(stderr, 40)}"
    if timed_out:
        pytest.fail(f"emacs did not finish within {EMACS_TIMEOUT:.0f} s\n{output}\n{diagnostics(tmp)}")
    results = [json.loads(line[len(RESULT_TAG):]) for line in stdout.splitlines() if line.startswith(RESULT_TAG)]
    assert results, f"emacs exited {proc.returncode} without a result line\n{output}\n{diagnostics(tmp)}"
    result = results[-1]
    if "error" in result or proc.returncode != 0:
        pytest.fail(f"driver failed (exit {proc.returncode}): {result.get('error')}\n"
                    f"result: {json.dumps(result)[:2000]}\n{output}\n{diagnostics(tmp)}")
    return result, stderr, wall


def diagnostics(tmp: Path) -> str:
    """The ends of the server's log and of the client's log of the JSON-RPC traffic."""
    parts = []
    for log in sorted(tmp.glob("*.log")):
        parts.append(f"--- {log.name} ---\n{tail(log.read_text(encoding='utf-8', errors='replace'), 25)}")
    return "\n".join(parts) or "(no logs)"


def item_insertion(result: dict) -> str | None:
    """What the accepted item inserts at point: its range (UTF-32 positions, lsp-mode's choice) and
    text say which part of `before` it replaces and with what."""
    lines = result["before"].split("\n")

    def offset(line: int, column: int) -> int:
        return sum(len(text) + 1 for text in lines[:line]) + column

    item, cursor = result["item"], offset(result["line"], result["column"])
    r = item.get("range")
    start, end = (offset(r["start"]["line"], r["start"]["character"]),
                  offset(r["end"]["line"], r["end"]["character"])) if r else (cursor, cursor)
    return inserted_by(result["before"], cursor, start, end, item["insertText"])


def inserted(before: str, line: int, column: int, text: str) -> str:
    """`before` with `text` inserted at (line, column), 0-based, column in characters."""
    lines = before.split("\n")
    lines[line] = lines[line][:column] + text + lines[line][column:]
    return "\n".join(lines)


def prepare(tmp: Path) -> Path:
    source = tmp / "fib.py"
    source.write_text(SOURCE, encoding="utf-8")
    return source


# --- the tests ----------------------------------------------------------------------------------


def test_lsp_mode_shows_and_accepts_inline_completion(emacs_load_path, request, tmp_path):
    options = server_options(request)
    source = prepare(tmp_path)
    driver = write_driver(LSP_MODE_EL, tmp_path, source, options, tmp_path / "server.log", "lsp-mode")
    result, _, wall = run_emacs(emacs_load_path, driver, tmp_path)

    suggestion = item_insertion(result)
    assert isinstance(suggestion, str) and suggestion.strip(), f"empty suggestion: {result}"
    # the overlay shows exactly what the item inserts at point (it replaces the line up to point
    # with the same text, which the overlay draws as it is)
    assert result["shown"] == suggestion, f"overlay shows {result['shown']!r}, item inserts {suggestion!r}"
    # accepting inserts exactly the suggestion at point, and leaves point after it
    expected = inserted(result["before"], result["line"], result["column"], suggestion)
    assert result["after"] == expected, f"buffer after accepting:\n{result['after']}\nexpected:\n{expected}"
    assert suggestion in result["after"]
    end_line = result["line"] + suggestion.count("\n")
    end_col = len(suggestion.rsplit("\n", 1)[-1]) + (result["column"] if "\n" not in suggestion else 0)
    assert result["point"] == [end_line, end_col]
    # lsp-inline-completion-accept ran the item's command: the server marked the request accepted
    rid = result["item"]["command"]["arguments"][0]
    records = [r for r in result["stats"]["requests"] if r["id"] == rid]
    assert records and records[0].get("accepted") is True, f"request {rid} not marked accepted: {result['stats']}"
    assert result["server_exit"] != "still running", "the server outlived lsp-workspace-shutdown"

    record_run("lsp-mode", [
        f"client:     {result['lsp_mode']}",
        "            (lsp-inline-completion-display, then lsp-inline-completion-accept)",
        *common_lines(result, options, wall),
        f"overlay:    {result['shown_at'] - result['ready']:.1f} s after ready",
        "",
        "suggestion (what the item inserts at point, repr):",
        f"  {suggestion!r}",
        "",
        "buffer after lsp-inline-completion-accept:",
        *numbered(result["after"]),
        "",
        f"speclsp.stats after accepting: request {rid} accepted={records[0].get('accepted')}",
        f"server exit status after lsp-workspace-shutdown: {result['server_exit']} "
        "(lsp-mode deletes the process right after the exit notification)",
    ])


def test_eglot_completion_at_point_inserts_our_item(emacs_load_path, request, tmp_path):
    options = server_options(request)
    source = prepare(tmp_path)
    driver = write_driver(EGLOT_EL, tmp_path, source, options, tmp_path / "server.log", "eglot")
    result, _, wall = run_emacs(emacs_load_path, driver, tmp_path)

    item = result["item"]
    edit = item["textEdit"]
    new_text = edit["newText"]
    assert item.get("detail") == "speclsp" and new_text.strip(), f"not our item: {item}"
    # The item is a snippet with nothing to expand; without yasnippet eglot 1.9 inserts newText as
    # it is, so a completion containing `$`, `}` or `\` would keep the snippet escapes.
    text = re.sub(r"\\([\\$}])", r"\1", new_text)
    # eglot replaced the edit's range (the word being typed) with newText
    start, end = edit["range"]["start"], edit["range"]["end"]
    assert start["line"] == end["line"] == result["line"] and end["character"] == result["column"]
    lines = result["before"].split("\n")
    row = lines[result["line"]]
    lines[result["line"]] = row[:start["character"]] + "\0" + row[end["character"]:]
    expected = "\n".join(lines)
    assert result["after"] in (expected.replace("\0", text), expected.replace("\0", new_text)), (
        f"buffer after completion-at-point:\n{result['after']}\nexpected:\n{expected.replace(chr(0), text)}")
    assert text in result["after"] or new_text in result["after"]
    assert result["server_exit"] != "still running", "the server outlived eglot-shutdown"

    record_run("eglot", [
        f"client:     eglot {result['eglot']} (completion-at-point: the textDocument/completion fallback)",
        *common_lines(result, options, wall),
        f"inserted:   {result['inserted_at'] - result['ready']:.1f} s after ready",
        "",
        "completion item (label; textEdit newText, repr):",
        f"  {item['label']!r}",
        f"  {new_text!r}",
        "",
        "buffer after completion-at-point:",
        *numbered(result["after"]),
        "",
        f"server exit status after eglot-shutdown: {result['server_exit']} "
        "(eglot deletes the process right after the exit notification)",
    ])


# --- the record of the runs ---------------------------------------------------------------------


def common_lines(result: dict, options: dict, wall: float) -> list[str]:
    models = "embedded demo models" if not options else "tiny random test pair (noise text: proves the plumbing)"
    attempts = ", ".join(f"{a['typed']!r} -> {a['items']} item(s)" for a in result["attempts"])
    return [
        f"date:       {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"emacs:      {result['emacs']} (emacs --batch -Q, python-mode)",
        f"models:     {models}",
        f"typed:      {result['typed']!r} at the end of line {CURSOR_LINE} (attempts: {attempts})",
        f"ready:      {result['initialized']:.1f} s after the driver started (initialized), "
        f"{result['ready']:.1f} s (models loaded)",
        f"whole run:  {wall:.1f} s (emacs start to exit, server shutdown included)",
    ]


def numbered(text: str) -> list[str]:
    return [f"  {i:>2} | {line}" for i, line in enumerate(text.rstrip("\n").split("\n"), 1)]


SECTION = "=== {} ==="


def record_run(client: str, lines: list[str]) -> None:
    """Print the run and keep it in its section of docs/editor-runs/emacs.txt (the other stays)."""
    text = "\n".join([SECTION.format(client), *lines, ""])
    print("\n" + text)
    sections = {}
    if RUN_RECORD.exists():
        current = None
        for line in RUN_RECORD.read_text(encoding="utf-8").splitlines():
            match = re.fullmatch(r"=== (.+) ===", line)
            if match:
                current = match.group(1)
                sections[current] = [line]
            elif current:
                sections[current].append(line)
    sections[client] = text.rstrip("\n").split("\n")
    body = [
        "# Emacs end-to-end runs (tests/editors/test_editor_emacs.py)",
        "",
        *("\n".join(sections[name]).rstrip("\n") + "\n" for name in ("lsp-mode", "eglot") if name in sections),
    ]
    RUN_RECORD.parent.mkdir(parents=True, exist_ok=True)
    RUN_RECORD.write_text("\n".join(body), encoding="utf-8")


# --- cleanup ------------------------------------------------------------------------------------


