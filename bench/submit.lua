-- bench/submit.lua - wrk script: durable 2 KB submissions (POST /send,
-- multipart, CSRF first) rotating over the sessions in $REFUGE_SESSIONS.
dofile(os.getenv("REFUGE_SESSIONS"))
local i = 0
local boundary = "refugebench7d1e"
local text = string.rep("Hello, I need help. ", 103) -- about 2 KB
local failed = 0
request = function()
    i = i % #sessions + 1
    local s = sessions[i]
    local body = "--" .. boundary .. "\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n" ..
        s.csrf .. "\r\n--" .. boundary ..
        "\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n" .. text ..
        "\r\n--" .. boundary .. "--\r\n"
    return wrk.format("POST", "/send", {
        ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
        ["Cookie"] = s.cookie,
    }, body)
end
