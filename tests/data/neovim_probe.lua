-- Test-only probe for tests/test_editor_neovim.py, loaded after the README's config. It changes no
-- behaviour: it records what Neovim asked the server, what came back, what was on screen and what
-- Tab inserted, so the test can tell which request made the ghost text and for which text.
-- It reaches into Neovim 0.12's internals (the inline completion Completor, the LSP Client class):
-- a test may, a user's config should not need to.
local api = vim.api
require('vim.lsp.inline_completion') -- loaded already by the config's enable(); said for clarity
local probe = {
  requests = {}, -- one record per textDocument/inlineCompletion request, in order
  accepts = {}, -- one record per item Neovim inserted
  origin = setmetatable({}, { __mode = 'k' }), -- an item's command table -> index of its request
  last_key_ns = 0, -- when the buffer or cursor last changed in insert mode
}
_G.speclsp_probe = probe

local function now()
  return vim.uv.hrtime()
end

local function buffer_text(buf)
  return table.concat(api.nvim_buf_get_lines(buf, 0, -1, true), '\n')
end

-- The Completor of the buffer: holds the item Neovim shows and would accept (`current`).
local function completor(buf)
  local capability = require('vim.lsp._capability').all.inline_completion
  return capability and capability.active[buf]
end

-- The ghost text extmark: where it sits and what it says.
local function ghost(buf)
  local ns = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
  if not ns then
    return nil
  end
  for _, mark in ipairs(api.nvim_buf_get_extmarks(buf, ns, 0, -1, { details = true })) do
    local d = mark[4]
    if d.virt_text then
      local chunks = function(list)
        return table.concat(vim.tbl_map(function(c) return c[1] end, list))
      end
      return {
        row = mark[2], col = mark[3], text = chunks(d.virt_text), pos = d.virt_text_pos,
        lines = vim.tbl_map(chunks, d.virt_lines or {}),
      }
    end
  end
end

-- The screen rows from where buffer line `lnum` (1-based) starts to where the next one starts: the
-- line, its wrapped continuation and the virtual lines drawn below it.
local function screen_rows(lnum)
  vim.cmd.redraw()
  local win = api.nvim_get_current_win()
  local first = vim.fn.screenpos(win, lnum, 1).row
  if first == 0 then
    return {}
  end
  local last = math.min(first + 20, vim.o.lines - 2)
  if lnum < api.nvim_buf_line_count(0) and vim.fn.screenpos(win, lnum + 1, 1).row > 0 then
    last = vim.fn.screenpos(win, lnum + 1, 1).row - 1
  end
  local rows = {}
  for row = first, last do
    local cells = {}
    for col = 1, vim.o.columns do
      cells[col] = vim.fn.screenstring(row, col)
    end
    rows[#rows + 1] = table.concat(cells)
  end
  return rows
end

local function item_view(item)
  if not item then
    return nil
  end
  return { present = true, request = item.command and probe.origin[item.command] }
end

--- Everything the test checks at one moment, read in one call so it is consistent.
function probe.snapshot()
  local buf = api.nvim_get_current_buf()
  local cursor = api.nvim_win_get_cursor(0)
  local c = completor(buf)
  local g = ghost(buf)
  return {
    text = buffer_text(buf),
    row = cursor[1] - 1,
    col = cursor[2],
    tick = vim.b[buf].changedtick,
    mode = api.nvim_get_mode().mode,
    ghost = g,
    item = c and item_view(c.current),
    screen = g and screen_rows(g.row + 1) or nil,
    requests = #probe.requests,
    accepts = #probe.accepts,
    last_key_ns = probe.last_key_ns,
  }
end

--- The snapshot, then Tab pressed as a user would (through the user's mapping).
function probe.snapshot_and_tab()
  local snap = probe.snapshot()
  api.nvim_feedkeys(vim.keycode('<Tab>'), 'mt', false)
  return snap
end

function probe.request(i)
  return probe.requests[i]
end

function probe.accept(i)
  return probe.accepts[i]
end

-- Record every inline completion request with the buffer text it was made for, and its answer.
local Client = require('vim.lsp.client')
local request = Client.request
function Client:request(method, params, handler, bufnr)
  if method ~= 'textDocument/inlineCompletion' or type(handler) ~= 'function' then
    return request(self, method, params, handler, bufnr)
  end
  local buf = vim._resolve_bufnr(bufnr)
  local record = {
    tick = vim.b[buf].changedtick, text = buffer_text(buf), encoding = self.offset_encoding,
    line = params.position.line, character = params.position.character, asked_ns = now(),
  }
  table.insert(probe.requests, record)
  local index = #probe.requests
  return request(self, method, params, function(err, result, ctx)
    record.answered_ns = now()
    record.error = err and (err.message or tostring(err)) or nil
    record.items = {}
    for _, item in ipairs(result and (result.items or result) or {}) do
      if item.command then
        probe.origin[item.command] = index
      end
      table.insert(record.items, {
        insert_text = type(item.insertText) == 'string' and item.insertText or vim.inspect(item.insertText),
        range = item.range,
      })
    end
    handler(err, result, ctx)
    record.shown = ghost(buf) ~= nil
    record.shown_ns = now()
  end, bufnr)
end

-- Record what Neovim inserts when an item is accepted, with the buffer before and after.
local Completor = require('vim.lsp._capability').all.inline_completion
local accept = Completor.accept
function Completor:accept(item)
  local cursor = api.nvim_win_get_cursor(0)
  local record = {
    before = buffer_text(self.bufnr), row = cursor[1] - 1, col = cursor[2],
    tick = vim.b[self.bufnr].changedtick, item = item_view(item),
  }
  accept(self, item)
  record.after = buffer_text(self.bufnr)
  table.insert(probe.accepts, record)
end

api.nvim_create_autocmd({ 'TextChangedI', 'CursorMovedI' }, {
  callback = function()
    probe.last_key_ns = now()
  end,
})
