-- Argo CD health check for llmops.dev/v1alpha1 FineTuneJob (docs/gitops.md).
-- Field names and phases: docs/api-conventions.md.

-- BEGIN common: identical in every llmops.dev health.lua (tests/lua checks it).
-- Argo CD runs this in gopher-lua (Lua 5.1) with only the base and table
-- libraries (no string, no math): no string methods, no string.format.
-- Every field access is nil-safe; an unexpected shape reads as Progressing.
local function tbl(v)
  if type(v) == "table" then
    return v
  end
  return {}
end

-- A string for strings, numbers and booleans; nil for anything else.
local function text(v)
  local t = type(v)
  if t == "string" then
    if v == "" then
      return nil
    end
    return v
  end
  if t == "number" or t == "boolean" then
    return tostring(v)
  end
  return nil
end

local function num(v)
  if type(v) == "number" then
    return v
  end
  if type(v) == "string" then
    return tonumber(v)
  end
  return nil
end

local function condition(status, ctype)
  local conds = status.conditions
  if type(conds) ~= "table" then
    return nil
  end
  for _, c in ipairs(conds) do
    if type(c) == "table" and c.type == ctype then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and (c.status == "True" or c.status == true)
end

local function isFalse(c)
  return c ~= nil and (c.status == "False" or c.status == false)
end

-- The condition's message, else its reason, else nil.
local function condText(c)
  if c == nil then
    return nil
  end
  return text(c.message) or text(c.reason)
end

-- "a: b" when both are set, else whichever is.
local function join(a, b)
  if a and b then
    return a .. ": " .. b
  end
  return a or b
end

local function result(health, message)
  return { status = health, message = message }
end

-- Progressing until status.observedGeneration reaches metadata.generation.
local function waitForGeneration(meta, status)
  local generation = num(meta.generation)
  local observed = num(status.observedGeneration)
  if observed ~= nil and (generation == nil or observed >= generation) then
    return nil
  end
  if generation ~= nil then
    return result("Progressing", "Waiting for the operator to observe generation " .. text(generation))
  end
  return result("Progressing", "Waiting for the operator to observe the resource")
end

-- "step 120/1000, loss 1.5, ETA 5m" from status.progress; nil when empty.
local function progressText(progress)
  local p = tbl(progress)
  local parts = {}
  local step, total = text(p.step), text(p.totalSteps)
  if step and total then
    table.insert(parts, "step " .. step .. "/" .. total)
  elseif step then
    table.insert(parts, "step " .. step)
  end
  if text(p.loss) then
    table.insert(parts, "loss " .. text(p.loss))
  end
  if text(p.eta) then
    table.insert(parts, "ETA " .. text(p.eta))
  end
  if #parts == 0 then
    return nil
  end
  return table.concat(parts, ", ")
end

-- Runs check(obj) so that no input can make the script raise an error.
local function run(check, kind)
  if type(obj) ~= "table" then
    return result("Progressing", kind .. ": no object to assess")
  end
  local ok, res = pcall(check, tbl(obj.metadata), tbl(obj.spec), tbl(obj.status))
  if ok and type(res) == "table" then
    return res
  end
  return result("Progressing", kind .. ": unexpected status shape, waiting for the operator")
end
-- END common

local function check(meta, spec, status)
  local waiting = waitForGeneration(meta, status)
  if waiting then
    return waiting
  end
  local phase = text(status.phase)
  local ready = condition(status, "Ready")
  local succeeded = condition(status, "Succeeded")
  local failed = condition(status, "Failed")

  if phase == "Failed" or isTrue(failed) then
    return result("Degraded", condText(failed) or condText(succeeded) or condText(ready) or "FineTuneJob failed")
  end
  if phase == "Succeeded" or isTrue(succeeded) then
    local output = text(status.output)
    local message = nil
    if succeeded ~= nil then
      message = text(succeeded.message)
    end
    if message == nil and output then
      message = "Fine-tuning succeeded; output " .. output
    end
    return result("Healthy", message or "Fine-tuning succeeded")
  end
  if spec.suspend == true or phase == "Suspended" then
    local message = "Suspended"
    if phase then
      message = message .. " (phase " .. phase .. ")"
    end
    return result("Suspended", join(message, condText(ready) or progressText(status.progress)))
  end
  if phase == "Running" or phase == "Pending" then
    return result("Progressing", join(phase, progressText(status.progress) or condText(ready)))
  end
  if phase then
    return result("Progressing", join("Phase " .. phase, condText(ready)))
  end
  return result("Progressing", "Waiting for the operator to report a phase")
end

return run(check, "FineTuneJob")
