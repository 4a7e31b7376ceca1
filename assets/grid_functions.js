// Functions AG Grid calls by name from Python-defined grid options.
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

// Neutralise spreadsheet formula injection in CSV exports (OWASP: prefix with a quote).
window.beaconSafeCsvCell = function (params) {
  var value = params.value;
  if (value === null || value === undefined) { return ""; }
  // The rule of services/csv_safe.py: plain numbers stay numbers, a CR becomes a LF.
  if (typeof value === "number") { return value; }
  var text = String(value).replace(/\r\n?/g, "\n");
  if (!/^[=+\-@\t\n]/.test(text)) { return text; }
  if (/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text)) { return text; }
  return "'" + text;
};
dagfuncs.beaconSafeCsvCell = window.beaconSafeCsvCell;
