// County charts (ECharts, served from our own static files): ranking by net points, and
// completion rates. The tables beside them carry the same figures as text.
(() => {
  const data = document.getElementById("chart-data");
  if (!data || !window.echarts) return;
  const d = JSON.parse(data.textContent);
  const font = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif';
  const bar = (id, values, color, unit, max) => {
    const el = document.getElementById(id);
    if (!el) return;
    const chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false, textStyle: { fontFamily: font, fontSize: 14 },
      grid: { left: 110, right: 40, top: 20, bottom: 30 },
      xAxis: { type: "value", max, axisLabel: { formatter: "{value}" + unit } },
      yAxis: { type: "category", inverse: true, data: d.names },
      series: [{ type: "bar", barMaxWidth: 36, data: values, itemStyle: { color }, label: { show: true, position: "right", formatter: "{c}" + unit } }],
    });
    window.addEventListener("resize", () => chart.resize());
  };
  bar("chart-net", d.net, "#b42318", "", undefined);
  bar("chart-rate", d.rate, "#0e6b3b", "%", 100);
})();
