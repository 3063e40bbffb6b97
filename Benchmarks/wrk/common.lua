-- Shared by the api-writes wrk scripts: counts responses by status in each thread and prints the counts (and the
-- first body of a response that was not 2xx) when the run is done, as lines the benchmark program reads:
--   status <code> <count>
--   first-failure <code> <body>
-- wrk runs one Lua state per thread plus the main one; setup() runs in the main state once per thread.

local threads = {}
local next_thread = 0

function setup(thread)
   thread:set("thread_index", next_thread)
   next_thread = next_thread + 1
   table.insert(threads, thread)
end

statuses = {}
first_failure = nil

function count_status(status, body)
   statuses[status] = (statuses[status] or 0) + 1
   if (status < 200 or status > 299) and first_failure == nil then
      first_failure = tostring(status) .. " " .. string.gsub(body or "", "[\r\n]", " ")
   end
end

function thread_count()
   return next_thread
end

function all_threads()
   return threads
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses")
      if counts then
         for status, count in pairs(counts) do
            totals[status] = (totals[status] or 0) + count
         end
      end
      local failure = thread:get("first_failure")
      if failure then
         io.write("first-failure " .. failure .. "\n")
      end
      local extra = thread:get("starved")
      if extra and extra > 0 then
         io.write("starved " .. extra .. "\n")
      end
   end
   for status, count in pairs(totals) do
      io.write(string.format("status %d %d\n", status, count))
   end
end
