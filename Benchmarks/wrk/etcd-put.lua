-- etcd puts through its JSON gateway (POST /v3/kv/put), keys and values base64-encoded, spread over 1000 keys.
-- Usage: wrk -s etcd-put.lua http://127.0.0.1:PORT
dofile(string.gsub(debug.getinfo(1, "S").source, "^@(.*/)[^/]*$", "%1") .. "common.lua")

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(text)
   local out = {}
   for i = 1, #text, 3 do
      local a, b, c = string.byte(text, i, i + 2)
      local n = a * 65536 + (b or 0) * 256 + (c or 0)
      local c1 = math.floor(n / 262144) % 64
      local c2 = math.floor(n / 4096) % 64
      local c3 = math.floor(n / 64) % 64
      local c4 = n % 64
      out[#out + 1] = alphabet:sub(c1 + 1, c1 + 1) .. alphabet:sub(c2 + 1, c2 + 1)
         .. (b and alphabet:sub(c3 + 1, c3 + 1) or "=") .. (c and alphabet:sub(c4 + 1, c4 + 1) or "=")
   end
   return table.concat(out)
end

local keys = {}
local values = {}
local n = 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
   for i = 0, 999 do
      keys[i] = base64(string.format("bench/key-%04d", i))
   end
   for i = 0, 9 do
      values[i] = base64(string.format("retention.ms=%d", 86400000 + i))
   end
   n = thread_index * 7919
end

function request()
   n = n + 1
   local body = '{"key":"' .. keys[n % 1000] .. '","value":"' .. values[n % 10] .. '"}'
   return wrk.format("POST", "/v3/kv/put", headers, body)
end

function response(status, headers, body)
   count_status(status, body)
end
