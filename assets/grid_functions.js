// Functions AG Grid calls by name from Python-defined grid options.
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

// Neutralise spreadsheet formula injection in CSV exports (OWASP: prefix with a quote).
window.beaconSafeCsvCell = function (params) {
  var value = params.value;
  if (value === null || value === undefined) { return ""; }
  var text = String(value);
  return /^[=+\-@\t\r]/.test(text) ? "'" + text : text;
};
dagfuncs.beaconSafeCsvCell = window.beaconSafeCsvCell;
