using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace OrleansMeta.Benchmarks;

/// <summary>
/// Runs wrk (a separate load-generating process, so the client's own cost does not share the runtime with the server)
/// and reads its rate and latency percentiles.
/// </summary>
public static partial class Wrk
{
    public static bool IsAvailable => FindOnPath("wrk") is not null;

    public static async Task<Measurement> RunAsync(string scenario, Uri url, int connections, TimeSpan duration)
        => (await RunScriptAsync(scenario, url, connections, threads: 2, duration, script: null, [])).Measurement;

    /// <summary>
    /// Runs wrk with a Lua script from Benchmarks/wrk (which reports the count of answers per status, see common.lua).
    /// The measurement counts only 2xx answers as operations; <see cref="WrkRun"/> holds the rest.
    /// </summary>
    public static async Task<WrkRun> RunScriptAsync(
        string scenario, Uri url, int connections, int threads, TimeSpan duration, string? script, IReadOnlyList<string> scriptArguments)
    {
        List<string> arguments = [$"-t{threads}", $"-c{connections}", $"-d{(int)Math.Ceiling(duration.TotalSeconds)}s", "--latency"];
        if (script is not null)
        {
            arguments.AddRange(["-s", ScriptPath(script)]);
        }

        arguments.Add(url.ToString());
        if (scriptArguments.Count > 0)
        {
            arguments.Add("--");
            arguments.AddRange(scriptArguments);
        }

        var start = new ProcessStartInfo("wrk", arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var rate = RatePattern().Match(output);
        var requestsMatch = RequestsPattern().Match(output);
        if (process.ExitCode != 0 || !rate.Success || !requestsMatch.Success)
        {
            throw new InvalidOperationException($"wrk {string.Join(' ', arguments)} failed (exit code {process.ExitCode}):\n{output}\n{await errors}");
        }

        var requests = long.Parse(requestsMatch.Groups[1].Value, CultureInfo.InvariantCulture);
        var elapsed = TimeSpan.FromSeconds(requests / double.Parse(rate.Groups[1].Value, CultureInfo.InvariantCulture));
        var statuses = StatusPattern().Matches(output).ToDictionary(
            m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m => long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
        var non2xx = NonSuccessPattern().Match(output) is { Success: true } n ? long.Parse(n.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        var socketErrors = SocketErrorsPattern().Match(output) is { Success: true } e
            ? e.Groups.Values.Skip(1).Sum(g => long.Parse(g.Value, CultureInfo.InvariantCulture))
            : 0;
        var starved = StarvedPattern().Matches(output).Sum(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        var failures = FirstFailurePattern().Matches(output).Select(m => m.Groups[1].Value).ToList();
        var counters = CounterPattern().Matches(output).GroupBy(m => m.Groups[1].Value)
            .ToDictionary(g => g.Key, g => g.Sum(m => long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)));
        var successes = script is null ? requests - non2xx : statuses.Where(s => s.Key is >= 200 and < 300).Sum(s => s.Value) - starved;
        var measurement = new Measurement(scenario + " [wrk]", connections, successes, elapsed, Percentile(output, "50"), Percentile(output, "99"));
        return new WrkRun(measurement, requests, statuses, socketErrors, starved, failures) { Counters = counters };
    }

    private static string ScriptPath(string script)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "wrk", script);
        return File.Exists(path) ? path : throw new FileNotFoundException($"The wrk script {path} is missing (Benchmarks/wrk is copied to the output).");
    }

    private static double Percentile(string output, string percent)
    {
        var match = Regex.Match(output, $@"^\s+{percent}(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", RegexOptions.Multiline);
        if (!match.Success)
        {
            return double.NaN;
        }

        var value = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        return match.Groups[2].Value switch
        {
            "us" => value,
            "ms" => value * 1_000,
            _ => value * 1_000_000,
        };
    }

    internal static string? FindOnPath(string name) => (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, name))
        .FirstOrDefault(File.Exists);

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RatePattern();

    [GeneratedRegex(@"(\d+) requests in")]
    private static partial Regex RequestsPattern();

    [GeneratedRegex(@"^status (\d+) (\d+)\s*$", RegexOptions.Multiline)]
    private static partial Regex StatusPattern();

    [GeneratedRegex(@"Non-2xx or 3xx responses: (\d+)")]
    private static partial Regex NonSuccessPattern();

    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    private static partial Regex SocketErrorsPattern();

    [GeneratedRegex(@"^starved (\d+)\s*$", RegexOptions.Multiline)]
    private static partial Regex StarvedPattern();

    [GeneratedRegex(@"^counter (\S+) (\d+)\s*$", RegexOptions.Multiline)]
    private static partial Regex CounterPattern();

    [GeneratedRegex(@"^first-failure (.*)$", RegexOptions.Multiline)]
    private static partial Regex FirstFailurePattern();
}

/// <summary>One wrk run: the measurement (2xx answers only), all requests, answers per status, socket errors (connect,
/// read, write and timeouts together), requests the script could not make (<c>starved</c>), the first non-2xx bodies,
/// and what the script counted itself (<c>counter name value</c> lines, e.g. partitions changed by batched requests).</summary>
public sealed record WrkRun(
    Measurement Measurement, long Requests, IReadOnlyDictionary<int, long> Statuses, long SocketErrors, long Starved, IReadOnlyList<string> FirstFailures)
{
    public IReadOnlyDictionary<string, long> Counters { get; init; } = new Dictionary<string, long>();

    public long NonSuccess => Statuses.Where(s => s.Key is < 200 or > 299).Sum(s => s.Value);

    public long ServerErrors => Statuses.Where(s => s.Key >= 500).Sum(s => s.Value);

    public string Describe() =>
        $"{Requests:N0} requests, " + string.Join(", ", Statuses.OrderBy(s => s.Key).Select(s => $"{s.Value:N0} × {s.Key}")) +
        (SocketErrors > 0 ? $", {SocketErrors:N0} socket errors/timeouts" : "") + (Starved > 0 ? $", {Starved:N0} starved (not counted)" : "");
}
