-- POST /v1/configs over TOPICS topics named PREFIX0 .. PREFIX(TOPICS-1): each request sets retention.ms on BATCH
-- consecutive topics, each to a value no other change of the run uses (so every topic changes and writes).
-- Usage: wrk -s topic-configs-batched.lua URL -- PREFIX TOPICS PROCESS PROCESSES BATCH
-- Prints "counter changed N" and "counter refused N" (topics, not requests).
dofile(string.gsub(debug.getinfo(1, "S").source, "^@(.*/)[^/]*$", "%1") .. "common.lua")

local prefix, topics, batch, slot, slots
local n = 0
local headers = { ["Content-Type"] = "application/json" }
changed = 0
refused = 0
counter_names = { "changed", "refused" }

function init(args)
   prefix = args[1]
   topics = tonumber(args[2])
   local process, processes = tonumber(args[3]), tonumber(args[4])
   batch = tonumber(args[5])
   -- Each thread of each process takes its own residue class of values.
   slots = processes * 64
   slot = process * 64 + thread_index
   n = thread_index * 7919 + process * 104729
end

function request()
   local parts = {}
   local first = n
   for i = 1, batch do
      n = n + 1
      local value = 86400000 + n * slots + slot
      parts[i] = '{"topic":"' .. prefix .. ((first + i) % topics) .. '","configs":{"retention.ms":"' .. value .. '"}}'
   end
   return wrk.format("POST", "/v1/configs", headers, '{"topics":[' .. table.concat(parts, ",") .. ']}')
end

function response(status, headers, body)
   count_status(status, body)
   if status ~= 200 or body == nil then
      return
   end
   for code in string.gmatch(body, '"errorCode":([^,]*),') do
      if code == "null" then
         changed = changed + 1
      else
         refused = refused + 1
         if first_failure == nil then
            first_failure = "200 " .. string.sub(body, 1, 300)
         end
      end
   end
end

