-- PATCH /v1/topics/{t}/configs over TOPICS topics named PREFIX0 .. PREFIX(TOPICS-1), each request setting retention.ms
-- to a value no other request of the run uses (so every request changes the topic and writes).
-- Usage: wrk -s topic-configs.lua URL -- PREFIX TOPICS PROCESS PROCESSES [TOPIC_FILE]
-- (PROCESS of PROCESSES: when several wrk processes run at once, each has its own slice of values. TOPIC_FILE, one
-- topic name per line, replaces PREFIX0 .. PREFIX(TOPICS-1): the topics whose grain the target silo owns.)
dofile(string.gsub(debug.getinfo(1, "S").source, "^@(.*/)[^/]*$", "%1") .. "common.lua")

local prefix, topics, slot, slots
local names = nil
local n = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   prefix = args[1]
   topics = tonumber(args[2])
   if args[5] then
      names = {}
      for line in io.lines(args[5]) do
         names[#names + 1] = line
      end
      topics = #names
   end
   local process, processes = tonumber(args[3]), tonumber(args[4])
   -- Each thread of each process takes its own residue class of values.
   slots = processes * 64
   slot = process * 64 + thread_index
   n = thread_index * 7919 + process * 104729
end

function request()
   n = n + 1
   local topic = names and names[(n % topics) + 1] or prefix .. (n % topics)
   local value = 86400000 + n * slots + slot
   return wrk.format("PATCH", "/v1/topics/" .. topic .. "/configs", headers, '{"configs":{"retention.ms":"' .. value .. '"}}')
end

function response(status, headers, body)
   count_status(status, body)
end
