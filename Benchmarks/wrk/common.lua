-- Shared by the api-writes wrk scripts: counts responses by status in each thread and prints the counts (and the
-- first body of a response that was not 2xx) when the run is done, as lines the benchmark program reads:
--   status <code> <count>
--   first-failure <code> <body>
--   counter <name> <total>      (for each name in the script's counter_names)
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
   -- A script that counts what its answers did names its per-thread counters in counter_names.
   for _, name in ipairs(counter_names or {}) do
      local total = 0
      for _, thread in ipairs(threads) do
         total = total + (thread:get(name) or 0)
      end
      io.write(string.format("counter %s %d\n", name, total))
   end
end

-- Partition state files of the AlterPartition scripts: one line per partition, "topic partition leader brokerEpoch
-- leaderEpoch partitionEpoch replicas isr" (replicas and isr comma-separated), as the benchmark wrote them from a
-- metadata image at the log head.

function split_ints(text)
   local list = {}
   for v in string.gmatch(text, "-?%d+") do
      list[#list + 1] = tonumber(v)
   end
   return list
end

-- The partitions of the file that belong to this thread (every slots-th line from slot), as tables.
function read_partitions(path, slot, slots)
   local partitions = {}
   local line_number = 0
   for line in io.lines(path) do
      if line_number % slots == slot then
         local topic, partition, leader, broker_epoch, leader_epoch, partition_epoch, replicas, isr =
            string.match(line, "^(%S+) (%d+) (%d+) (%d+) (%d+) (%d+) (%S+) (%S+)$")
         table.insert(partitions, {
            topic = topic, partition = tonumber(partition), leader = tonumber(leader), broker_epoch = broker_epoch,
            leader_epoch = tonumber(leader_epoch), partition_epoch = tonumber(partition_epoch),
            replicas = split_ints(replicas), isr = split_ints(isr),
         })
      end
      line_number = line_number + 1
   end
   return partitions
end

-- The ISR to propose next: without the assignment's last follower when all replicas are in sync, else all replicas.
function next_isr(p)
   if #p.isr == #p.replicas then
      local isr, dropped = {}, false
      for i = #p.replicas, 1, -1 do
         local b = p.replicas[i]
         if not dropped and b ~= p.leader then
            dropped = true
         else
            table.insert(isr, 1, b)
         end
      end
      return isr
   end
   return p.replicas
end
