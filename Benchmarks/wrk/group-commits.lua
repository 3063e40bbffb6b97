-- Offset commits (PUT /v1/groups/{g}/offsets) over the groups listed in GROUP_FILE, one group id a line: each thread
-- takes every THREADS-th line from its THREAD-th, walks its groups round robin and commits PER_CALL partitions of a
-- group per request (of PARTITIONS, starting where the previous round stopped) with member epoch -1 (no members).
-- Every commit sets an offset no earlier request of the thread set, so every request writes.
-- Usage: wrk -s group-commits.lua URL -- GROUP_FILE TOPIC PARTITIONS PER_CALL THREADS
dofile(string.gsub(debug.getinfo(1, "S").source, "^@(.*/)[^/]*$", "%1") .. "common.lua")

local groups = {}
local topic, partitions, per_call
local n = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   topic, partitions, per_call = args[2], tonumber(args[3]), tonumber(args[4])
   local threads = tonumber(args[5])
   local line_number = 0
   for line in io.lines(args[1]) do
      if line_number % threads == thread_index and #line > 0 then
         groups[#groups + 1] = line
      end
      line_number = line_number + 1
   end
end

function request()
   n = n + 1
   local group = groups[(n % #groups) + 1]
   local first = math.floor(n / #groups) * per_call
   local offsets = {}
   for i = 0, per_call - 1 do
      offsets[#offsets + 1] = string.format('{"topic":"%s","partition":%d,"offset":%d}', topic, (first + i) % partitions, n)
   end
   local body = '{"memberId":null,"memberEpoch":-1,"offsets":[' .. table.concat(offsets, ",") .. ']}'
   return wrk.format("PUT", "/v1/groups/" .. group .. "/offsets", headers, body)
end

function response(status, headers, body)
   count_status(status, body)
end
