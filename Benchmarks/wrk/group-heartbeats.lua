-- Steady consumer-group heartbeats (POST /v1/groups/{g}/heartbeat) of the members listed in MEMBER_FILE, one a line:
-- a group id, a space, and the member's heartbeat body (JSON, its current epoch and owned partitions). Each thread
-- takes every THREADS-th line from its THREAD-th and walks its members round robin. Every member is stable, so every
-- answer should be 200 and no heartbeat should write.
-- Usage: wrk -s group-heartbeats.lua URL -- MEMBER_FILE THREADS
dofile(string.gsub(debug.getinfo(1, "S").source, "^@(.*/)[^/]*$", "%1") .. "common.lua")

local requests = {}
local n = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   local threads = tonumber(args[2])
   local all = {}
   local line_number = 0
   for line in io.lines(args[1]) do
      if #line > 0 then
         local space = string.find(line, " ", 1, true)
         local group, body = string.sub(line, 1, space - 1), string.sub(line, space + 1)
         local request = wrk.format("POST", "/v1/groups/" .. group .. "/heartbeat", headers, body)
         all[#all + 1] = request
         if line_number % threads == thread_index then
            requests[#requests + 1] = request
         end
         line_number = line_number + 1
      end
   end
   -- Fewer members than threads: a thread without its own share sends everyone's.
   if #requests == 0 then
      requests = all
   end
end

function request()
   n = n + 1
   return requests[(n % #requests) + 1]
end

function response(status, headers, body)
   count_status(status, body)
end
