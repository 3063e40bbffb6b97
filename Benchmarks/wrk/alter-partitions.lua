-- AlterPartition as brokers send it (POST /v1/brokers/{id}/alter-partition): each request carries up to BATCH
-- partitions of one leader, alternating each partition's ISR between a shrink by one follower and all replicas. Every
-- partition change is a compare-and-set on its partition epoch, so a partition is never in two requests in flight:
-- each thread of each wrk process owns a disjoint slice of the partitions, keeps those not in flight in one queue per
-- leader, and takes each partition's new epochs and ISR from its result before it queues the partition again.
-- Usage: wrk -s alter-partitions.lua URL -- STATE_FILE PROCESS PROCESSES THREADS BATCH
-- STATE_FILE as for alter-partition.lua (one line per partition: topic partition leader brokerEpoch leaderEpoch
-- partitionEpoch replicas isr). Prints "counter changed N" and "counter refused N" (partitions, not requests).
dofile(string.gsub(debug.getinfo(1, "S").source, "^@(.*/)[^/]*$", "%1") .. "common.lua")

local owned = {}      -- "topic-partition" -> state
local queues = {}     -- leader -> { items, head, tail }
local leaders = {}    -- leader ids, for round-robin
local next_leader = 1
local batch = 100
local headers = { ["Content-Type"] = "application/json" }
starved = 0
changed = 0
refused = 0
counter_names = { "changed", "refused" }

local function queue_for(leader)
   local q = queues[leader]
   if q == nil then
      q = { items = {}, head = 1, tail = 0 }
      queues[leader] = q
      table.insert(leaders, leader)
   end
   return q
end

local function push(p)
   local q = queue_for(p.leader)
   q.tail = q.tail + 1
   q.items[q.tail] = p
end

function init(args)
   local process, processes, threads = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
   batch = tonumber(args[5]) or batch
   for _, p in ipairs(read_partitions(args[1], process * threads + thread_index, processes * threads)) do
      owned[p.topic .. "-" .. p.partition] = p
      push(p)
   end
end

function request()
   -- The next leader, round-robin, with partitions not in flight.
   for _ = 1, #leaders do
      local leader = leaders[next_leader]
      next_leader = next_leader % #leaders + 1
      local q = queues[leader]
      if q.head <= q.tail then
         local by_topic, topics, epoch = {}, {}, nil
         local n = 0
         while n < batch and q.head <= q.tail do
            local p = q.items[q.head]
            q.items[q.head] = nil
            q.head = q.head + 1
            n = n + 1
            epoch = p.broker_epoch
            local items = by_topic[p.topic]
            if items == nil then
               items = {}
               by_topic[p.topic] = items
               table.insert(topics, p.topic)
            end
            table.insert(items, string.format('{"partition":%d,"leaderEpoch":%d,"partitionEpoch":%d,"newIsr":[%s]}',
               p.partition, p.leader_epoch, p.partition_epoch, table.concat(next_isr(p), ",")))
         end
         local parts = {}
         for _, topic in ipairs(topics) do
            table.insert(parts, '{"topic":"' .. topic .. '","partitions":[' .. table.concat(by_topic[topic], ",") .. ']}')
         end
         local body = '{"brokerEpoch":' .. epoch .. ',"topics":[' .. table.concat(parts, ",") .. ']}'
         return wrk.format("POST", "/v1/brokers/" .. leader .. "/alter-partition", headers, body)
      end
   end
   -- Every owned partition is in flight (only possible if answers were lost): say so rather than break the CAS.
   starved = starved + 1
   return wrk.format("GET", "/health/live")
end

function response(status, headers, body)
   count_status(status, body)
   if status ~= 200 or body == nil or string.sub(body, 1, 10) ~= '{"topics":' then
      return
   end
   -- Per topic: {"topic":"t","topicId":"...","partitions":[ results ]}; each topic's results run to the next topic.
   local starts = {}
   local from = 1
   while true do
      local s, e, topic = string.find(body, '{"topic":"([^"]*)","topicId":', from)
      if s == nil then
         break
      end
      table.insert(starts, { s = s, e = e, topic = topic })
      from = e + 1
   end
   for i, t in ipairs(starts) do
      local results = string.sub(body, t.e, (starts[i + 1] and starts[i + 1].s or #body + 1) - 1)
      for partition, rest in string.gmatch(results, '{"partition":(%d+),"state":(.-),"retryable":[a-z]+}') do
         local p = owned[t.topic .. "-" .. partition]
         if p then
            if string.sub(rest, 1, 4) == "null" then
               refused = refused + 1
               if first_failure == nil then
                  first_failure = "200 " .. t.topic .. "-" .. partition .. " " .. rest
               end
               local epoch = string.match(rest, "is at partition epoch (%d+)")
               if epoch then
                  p.partition_epoch = tonumber(epoch)
               end
            else
               changed = changed + 1
               p.leader = tonumber(string.match(rest, '"leader":(-?%d+)'))
               p.leader_epoch = tonumber(string.match(rest, '"leaderEpoch":(%d+)'))
               p.partition_epoch = tonumber(string.match(rest, '"partitionEpoch":(%d+)'))
               p.isr = split_ints(string.match(rest, '"isr":%[([^%]]*)%]') or "")
            end
            push(p)
         end
      end
   end
end

