-- AlterPartition from partition leaders (POST /v1/topics/{t}/partitions/{p}/isr), alternating a shrink of the ISR by one
-- follower with the expansion back to all replicas. It is a compare-and-set on the partition epoch, so no two requests
-- for one partition may be in flight at once: each thread of each wrk process owns a disjoint slice of the partitions,
-- keeps the ones not in flight in a queue, and takes each partition's new epochs and ISR from the 200 answer before it
-- queues the partition again.
-- Usage: wrk -s alter-partition.lua URL -- STATE_FILE PROCESS PROCESSES THREADS
-- STATE_FILE has one line per partition: topic partition leader brokerEpoch leaderEpoch partitionEpoch replicas isr
-- (replicas and isr comma-separated), as the benchmark wrote it from a metadata image at the log head.
dofile(string.gsub(debug.getinfo(1, "S").source, "^@(.*/)[^/]*$", "%1") .. "common.lua")

local owned = {}       -- "topic-partition" -> state
local queue = {}       -- partitions not in flight, FIFO
local head, tail = 1, 0
local headers = { ["Content-Type"] = "application/json" }
starved = 0

local function push(p)
   tail = tail + 1
   queue[tail] = p
end

local function pop()
   if head > tail then
      return nil
   end
   local p = queue[head]
   queue[head] = nil
   head = head + 1
   return p
end

function init(args)
   local process, processes, threads = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
   for _, p in ipairs(read_partitions(args[1], process * threads + thread_index, processes * threads)) do
      owned[p.topic .. "-" .. p.partition] = p
      push(p)
   end
end

function request()
   local p = pop()
   if p == nil then
      -- Every owned partition is in flight (only possible if answers were lost): say so rather than break the CAS.
      starved = starved + 1
      return wrk.format("GET", "/health/live")
   end
   local isr = next_isr(p)
   local body = string.format('{"leaderId":%d,"brokerEpoch":%s,"leaderEpoch":%d,"partitionEpoch":%d,"newIsr":[%s]}',
      p.leader, p.broker_epoch, p.leader_epoch, p.partition_epoch, table.concat(isr, ","))
   return wrk.format("POST", "/v1/topics/" .. p.topic .. "/partitions/" .. p.partition .. "/isr", headers, body)
end

function response(status, headers, body)
   count_status(status, body)
   if status == 200 then
      local topic = string.match(body, '"topic":"([^"]*)"')
      local partition = string.match(body, '"partition":(%d+)')
      local p = topic and partition and owned[topic .. "-" .. partition]
      if p then
         p.leader = tonumber(string.match(body, '"leader":(-?%d+)'))
         p.leader_epoch = tonumber(string.match(body, '"leaderEpoch":(%d+)'))
         p.partition_epoch = tonumber(string.match(body, '"partitionEpoch":(%d+)'))
         p.isr = split_ints(string.match(body, '"isr":%[([^%]]*)%]') or "")
         push(p)
      end
   elseif body then
      -- A refused compare-and-set names the partition and its current epoch: take it back with that epoch.
      local topic, partition, epoch = string.match(body, "; (%S+)%-(%d+) is at partition epoch (%d+)")
      local p = topic and owned[topic .. "-" .. partition]
      if p then
         p.partition_epoch = tonumber(epoch)
         push(p)
      end
   end
end
