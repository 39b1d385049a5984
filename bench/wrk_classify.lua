-- wrk script for POST /v1/classify (see bench/api_load.py): KEY=... wrk -t1 -c100 -d20s --latency -s bench/wrk_classify.lua http://127.0.0.1:8000
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("KEY")
local texts = {"Во дворе не вывозят мусор уже неделю", "Не горит свет в парадной на третьем этаже", "Сосульки висят над входом в подъезд", "Яма на дороге у остановки", "Надписи на стене дома, закрасьте пожалуйста", "Нет горячей воды с утра", "Снег не убран с тротуара, скользко", "Сломаны качели на детской площадке", "Протекает крыша, заливает квартиру", "Незаконная реклама на фасаде дома"}
local districts = {"Невский", "Центральный", "Выборгский", "Калининский", "Приморский"}
request = function()
  local body = '{"text": "' .. texts[math.random(#texts)] .. '", "district": "' .. districts[math.random(#districts)] .. '"}'
  return wrk.format(nil, "/v1/classify", nil, body)
end
