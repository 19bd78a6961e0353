-- Runs every Argo CD health.lua against its fixtures, the way Argo CD does.
--
--   lua5.4 run_health_tests.lua <cases.lua> <customizations dir> [<argocd-cm generated> <argocd-cm committed>]
--
-- cases.lua comes from fixtures_to_lua.py. Each script runs in a sandbox like
-- Argo CD's (gopher-lua, Lua 5.1, libraries base, table and a safe os only;
-- no string or math library and no string methods), with the fixture as the
-- global `obj`; its result must match health_test.yaml's status and message
-- exactly. Also checked: the scripts use no syntax or library newer than Lua
-- 5.1 (or outside Argo's sandbox), their common block is identical, every
-- kind has at least MIN_FIXTURES fixtures, and the committed argocd-cm
-- snippet matches one generated from the scripts.
-- Prints one line per failure and a closing "N passed, M failed"; exits 1 on
-- any failure.

local MIN_FIXTURES = 5
-- The message of the scripts' pcall safety net (see run() in health.lua).
local FALLBACK = "unexpected status shape"
local VALID = { Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true }

local cases_file, root, cm_generated, cm_committed = arg[1], arg[2], arg[3], arg[4]
if not cases_file or not root then
  io.stderr:write("usage: run_health_tests.lua <cases.lua> <customizations dir> [<cm generated> <cm committed>]\n")
  os.exit(2)
end

local passed, failed = 0, 0
local verbose = os.getenv("VERBOSE") == "1"

local function pass(what)
  passed = passed + 1
  if verbose then
    print("ok   " .. what)
  end
end

local function fail(what, why)
  failed = failed + 1
  print("FAIL " .. what .. ": " .. why)
end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local s = f:read("a")
  f:close()
  return s
end

-- The source with comments removed and string literals emptied, so that the
-- syntax checks below look at code only.
local function code_only(src)
  local out, i, n = {}, 1, #src
  local function long_bracket(at)
    local eq = src:match("^%[(=*)%[", at)
    if not eq then
      return nil
    end
    local close = "]" .. eq .. "]"
    local e = src:find(close, at + #eq + 2, true)
    return e and (e + #close - 1) or n
  end
  while i <= n do
    local c = src:sub(i, i)
    if src:sub(i, i + 1) == "--" then
      local e = long_bracket(i + 2)
      if e then
        i = e + 1
      else
        local nl = src:find("\n", i, true) or n
        i = nl
      end
    elseif c == '"' or c == "'" then
      local j = i + 1
      while j <= n do
        local d = src:sub(j, j)
        if d == "\\" then
          j = j + 2
        elseif d == c then
          break
        else
          j = j + 1
        end
      end
      table.insert(out, '""')
      i = j + 1
    elseif c == "[" and long_bracket(i) then
      table.insert(out, '""')
      i = long_bracket(i) + 1
    else
      table.insert(out, c)
      i = i + 1
    end
  end
  return table.concat(out)
end

-- Constructs that Lua 5.1 / gopher-lua or Argo CD's sandbox does not have.
local FORBIDDEN = {
  { "%f[%w_]goto%f[^%w_]", "goto (Lua 5.2+)" },
  { "::", "labels (Lua 5.2+)" },
  { "//", "integer division (Lua 5.3+)" },
  { "&", "bitwise operator (Lua 5.3+)" },
  { "|", "bitwise operator (Lua 5.3+)" },
  { "~[^=]", "bitwise operator (Lua 5.3+)" },
  { "<<", "shift (Lua 5.3+)" },
  { ">>", "shift (Lua 5.3+)" },
  { "<const>", "attribs (Lua 5.4)" },
  { "<close>", "attribs (Lua 5.4)" },
  { "%f[%w_]string%.", "the string library (not loaded by Argo CD)" },
  { "%f[%w_]math%.", "the math library (not loaded by Argo CD)" },
  { "%f[%w_]utf8%.", "utf8 (Lua 5.3+)" },
  { "%f[%w_]io%.", "the io library (not loaded by Argo CD)" },
  { "%f[%w_]debug%.", "the debug library (not loaded by Argo CD)" },
  { "%f[%w_]require%f[^%w_]", "require" },
  { "table%.unpack", "table.unpack (Lua 5.2+)" },
  { "table%.pack", "table.pack (Lua 5.2+)" },
  { "table%.move", "table.move (Lua 5.3+)" },
  { "%f[%w_]load%s*%(", "load (differs between 5.1 and 5.4)" },
}

local function check_syntax(kind, src)
  local code = code_only(src)
  local problems = {}
  for _, f in ipairs(FORBIDDEN) do
    if code:find(f[1]) then
      table.insert(problems, f[2])
    end
  end
  if #problems > 0 then
    fail(kind .. " Lua 5.1 / sandbox check", table.concat(problems, "; "))
  else
    pass(kind .. " Lua 5.1 / sandbox check")
  end
end

-- Argo CD's sandbox: base (5.1 names), table, a safe os; obj as a global.
local function sandbox(input)
  return {
    obj = input,
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, print = print, rawequal = rawequal, rawget = rawget, rawset = rawset,
    select = select, setmetatable = setmetatable, getmetatable = getmetatable,
    tonumber = tonumber, tostring = tostring, type = type, unpack = table.unpack,
    xpcall = xpcall, _VERSION = "Lua 5.1",
    table = { concat = table.concat, insert = table.insert, remove = table.remove, sort = table.sort },
    os = { clock = os.clock, date = os.date, difftime = os.difftime, time = os.time },
  }
end

-- Runs a script; returns the result table or nil and an error.
local function run_script(src, chunkname, input)
  local fn, err = load(src, "@" .. chunkname, "t", sandbox(input))
  if not fn then
    return nil, "does not compile: " .. err
  end
  -- No string library in Argo CD: strings have no methods there either.
  local smt = getmetatable("")
  local saved = smt.__index
  smt.__index = nil
  local ok, res = pcall(fn)
  smt.__index = saved
  if not ok then
    return nil, "raised an error: " .. tostring(res)
  end
  if type(res) ~= "table" then
    return nil, "returned " .. type(res) .. ", not a table"
  end
  return res
end

local function show(v)
  if v == nil then
    return "nil"
  end
  return string.format("%q", tostring(v))
end

local data = dofile(cases_file)
local scripts, counts = {}, {}
for _, kind in ipairs(data.kinds) do
  local path = root .. "/" .. kind .. "/health.lua"
  local src, err = read(path)
  if not src then
    fail(kind, "cannot read " .. path .. ": " .. tostring(err))
  else
    scripts[kind] = src
    counts[kind] = 0
    check_syntax(kind, src)
  end
end

-- Every script shares one common block, byte for byte.
local common_ref, common_kind
for _, kind in ipairs(data.kinds) do
  local src = scripts[kind]
  if src then
    local block = src:match("\n(%-%- BEGIN common.-%-%- END common)\n")
    if not block then
      fail(kind .. " common block", "no -- BEGIN common ... -- END common block")
    elseif common_ref == nil then
      common_ref, common_kind = block, kind
      pass(kind .. " common block")
    elseif block ~= common_ref then
      fail(kind .. " common block", "differs from " .. common_kind .. "'s")
    else
      pass(kind .. " common block")
    end
  end
end

for _, c in ipairs(data.cases) do
  local key = c.group .. "/" .. c.kind
  local what = key .. " " .. c.name
  local src = scripts[key]
  if src then
    counts[key] = counts[key] + 1
    local res, err = run_script(src, key .. "/health.lua", c.input)
    if not res then
      fail(what, err)
    elseif not VALID[res.status] then
      fail(what, "invalid health status " .. show(res.status))
    elseif type(res.message) ~= "string" or res.message == "" then
      fail(what, "no message (status " .. show(res.status) .. ")")
    elseif res.status ~= c.expected.status or res.message ~= c.expected.message then
      fail(what, "got " .. show(res.status) .. " " .. show(res.message) ..
        ", want " .. show(c.expected.status) .. " " .. show(c.expected.message))
    else
      pass(what)
    end
  end
end

-- Robustness: odd inputs must give a valid result, never an error.
local odd = {
  { "nil obj", nil },
  { "empty obj", {} },
  { "scalar fields", { metadata = 1, spec = "x", status = true } },
  { "status of wrong types", { metadata = { generation = "x" }, status = { observedGeneration = {},
    phase = 7, conditions = { 1, "a", { type = "Ready", status = {}, message = {} } }, progress = 3 } } },
  -- Past the generation gate, with empty or mistyped fields.
  { "observed, nothing else", { metadata = { generation = 1 }, status = { observedGeneration = 1 } } },
  { "observed, empty members", { metadata = { generation = 1 }, spec = { suspend = "yes" },
    status = { observedGeneration = 1, phase = "Running", conditions = { {} }, progress = {} } } },
  { "observed, mistyped members", { metadata = { generation = 1 }, spec = 5, status = { observedGeneration = 1,
    phase = {}, conditions = "x", progress = "y", firingAlerts = "z", output = {}, url = {}, chunks = {} } } },
  { "observed, Ready with odd fields", { metadata = { generation = 1 }, status = { observedGeneration = 1,
    conditions = { { type = "Ready", status = "True", message = {}, reason = 3 } }, firingAlerts = { {}, {} } } } },
  { "observed, terminal with odd fields", { metadata = { generation = 1 }, status = { observedGeneration = 1,
    phase = "Succeeded", conditions = { { type = "Passed", status = "False" }, { type = "Succeeded", status = true } } } } },
}
for _, kind in ipairs(data.kinds) do
  if scripts[kind] then
    for _, o in ipairs(odd) do
      local what = kind .. " robustness: " .. o[1]
      local res, err = run_script(scripts[kind], kind .. "/health.lua", o[2])
      if not res then
        fail(what, err)
      elseif not VALID[res.status] or type(res.message) ~= "string" then
        fail(what, "invalid result " .. show(res.status) .. " " .. show(res.message))
      elseif res.message:find(FALLBACK, 1, true) then
        -- The pcall safety net caught an error: the code itself is not nil-safe.
        fail(what, "the script raised an error internally (" .. res.message .. ")")
      else
        pass(what)
      end
    end
    if counts[kind] < MIN_FIXTURES then
      fail(kind .. " fixtures", counts[kind] .. " fixtures, want at least " .. MIN_FIXTURES)
    else
      pass(kind .. " fixtures")
    end
  end
end

if cm_generated and cm_committed then
  local want, got = read(cm_generated), read(cm_committed)
  if not got then
    fail("argocd-cm snippet", "missing " .. cm_committed)
  elseif got ~= want then
    fail("argocd-cm snippet", cm_committed .. " is out of date: run charts/argocd/generate-argocd-cm.sh")
  else
    pass("argocd-cm snippet up to date")
  end
end

print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
