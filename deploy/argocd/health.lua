-- Argo CD health check for modelgate.io/ModelDeployment.
--
--   Serving with Ready=True                            -> Healthy
--   Pending, Blocked, Progressing, Retiring            -> Progressing
--   RolledBack, Quarantined, Degraded, or Stalled=True -> Degraded
--     (Stalled=True on a Blocked model: its serving revision lost its evidence and is suspended)
--   no status yet, or status.observedGeneration older
--   than metadata.generation                           -> Progressing (waiting for the operator)
--   a phase this script does not know                  -> Unknown
--
-- Argo CD runs this script with only Lua's base, table and package libraries (no string library),
-- so it uses nothing else. The message is the phase and the Ready condition's message, which names
-- what is missing or what happened. docs/gitops.md in modelgate explains the mapping.
local hs = {}

local function condition(status, ctype)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function say(phase, ready)
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    return phase .. ": " .. ready.message
  end
  return phase
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe this ModelDeployment"
  return hs
end

local generation = obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation) ..
    " (status is of generation " .. tostring(observed) .. ")"
  return hs
end

local phase = status.phase
local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
hs.message = say(phase, ready)

if phase == "RolledBack" or phase == "Quarantined" or phase == "Degraded" then
  hs.status = "Degraded"
elseif stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = say(phase, stalled)
elseif phase == "Serving" then
  if ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
  else
    hs.status = "Progressing"
  end
elseif phase == "Pending" or phase == "Blocked" or phase == "Progressing" or phase == "Retiring" then
  hs.status = "Progressing"
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase) .. "; " .. hs.message
end
return hs
