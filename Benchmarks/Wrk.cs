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
    {
        var start = new ProcessStartInfo("wrk", ["-t2", $"-c{connections}", $"-d{(int)Math.Ceiling(duration.TotalSeconds)}s", "--latency", url.ToString()])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var rate = double.Parse(RatePattern().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var requests = long.Parse(RequestsPattern().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        return new Measurement(scenario + " [wrk]", connections, requests, TimeSpan.FromSeconds(requests / rate), Percentile(output, "50"), Percentile(output, "99"));
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

    private static string? FindOnPath(string name) => (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, name))
        .FirstOrDefault(File.Exists);

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RatePattern();

    [GeneratedRegex(@"(\d+) requests in")]
    private static partial Regex RequestsPattern();
}
