-- SPDX-License-Identifier: MIT
-- wrk script of bench/run.sh's `geo` suite: clients spread over the whole GeoIP database.
-- Sends the plain keep-alive cell's request (GET / HTTP/1.1 with wrk's Host header) plus one
-- X-Forwarded-For header, a different address for each request, taken round-robin from a list
-- (one IPv4 address a line, made by bench/gen_large_mmdb.pl: addresses inside the large
-- database's networks, shuffled, spread over all regions).
--
--   wrk -t1 -c64 -d10s --latency -s bench/geo_clients.lua URL -- CLIENTS.txt [MAX]
--
-- MAX (0 or absent: all) uses only the first MAX addresses: run.sh's two populations are the
-- whole list of 100,042 (an address comes back only after all the others: the parts of
-- Meridian's IPv4 index it reads are rarely still in the CPU's caches) and the first 10,000
-- (a working set that comes back, as an edge node's clients do).
-- The requests are built once per wrk thread in init(), so request() costs the client a table
-- index and nothing more; each thread starts at its own offset in the list.
local reqs = {}
local n = 0
local i = 0

local threads = 0
function setup(thread)
   thread:set("geo_thread", threads) -- a global of that thread's Lua state
   threads = threads + 1
end

function init(args)
   local path = args[1] or os.getenv("GEO_CLIENTS")
   if not path then
      error("geo_clients.lua: give the address list: wrk ... -s geo_clients.lua URL -- FILE")
   end
   local max = tonumber(args[2] or "0") or 0
   local f = assert(io.open(path, "r"))
   for ip in f:lines() do
      if max > 0 and n >= max then
         break
      end
      if ip ~= "" then
         n = n + 1
         reqs[n] = wrk.format(nil, nil, { ["X-Forwarded-For"] = ip })
      end
   end
   f:close()
   if n == 0 then
      error("geo_clients.lua: no addresses in " .. path)
   end
   -- threads spread their starting points over the list
   i = ((geo_thread or 0) * 7919) % n
end

function request()
   i = i + 1
   if i > n then
      i = 1
   end
   return reqs[i]
end
