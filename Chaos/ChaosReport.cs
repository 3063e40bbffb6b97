using System.Text;

namespace OrleansMeta.Chaos;

/// <summary>What a chaos run did and what the checker found.</summary>
public sealed record ChaosReport(
    int Seed,
    TimeSpan Elapsed,
    IReadOnlyList<string> Faults,
    IReadOnlyList<Operation> Operations,
    long LogHead,
    IReadOnlyList<InvariantResult> Invariants)
{
    /// <summary>Where the silos' output is kept (a run with violations or server errors keeps it), else null.</summary>
    public string? SiloLogs { get; init; }

    /// <summary>Answers that say the server failed unexpectedly (500 UNKNOWN_SERVER_ERROR): not violations, since the
    /// outcome is unknown, but worth a look.</summary>
    public IReadOnlyList<Operation> ServerErrors => [.. Operations.Where(o => o.Error == "UNKNOWN_SERVER_ERROR")];

    public IReadOnlyList<string> Violations => [.. Invariants.SelectMany(i => i.Violations.Select(v => $"[{i.Name}] {v}"))];

    public override string ToString()
    {
        var text = new StringBuilder();
        text.AppendLine($"chaos run: seed {Seed}, {Elapsed.TotalSeconds:F0} s, metadata log head {LogHead}");
        text.AppendLine($"faults injected ({Faults.Count}):");
        foreach (var fault in Faults)
        {
            text.AppendLine($"  {fault}");
        }

        text.AppendLine($"operations ({Operations.Count}): kind ok/refused/unknown");
        foreach (var kind in Operations.GroupBy(o => o.Kind).OrderBy(g => g.Key))
        {
            int Count(Outcome outcome) => kind.Count(o => o.Outcome == outcome);
            text.AppendLine($"  {kind.Key,-20} {Count(Outcome.Ok),6} {Count(Outcome.Refused),6} {Count(Outcome.Unknown),6}");
        }

        var errors = Operations.Where(o => o.Error is not null).GroupBy(o => $"{o.Kind} {o.Outcome.ToString().ToLowerInvariant()} {o.Error}").OrderByDescending(g => g.Count()).ToList();
        if (errors.Count > 0)
        {
            text.AppendLine("not ok, by error: " + string.Join(", ", errors.Select(g => $"{g.Key} x{g.Count()}")));
        }

        foreach (var error in ServerErrors)
        {
            text.AppendLine($"  server error at {(double)error.InvokedAt / System.Diagnostics.Stopwatch.Frequency:F1}s: {error}");
        }

        if (SiloLogs is not null)
        {
            text.AppendLine($"silo logs kept in {SiloLogs}");
        }

        text.AppendLine("invariants:");
        foreach (var invariant in Invariants)
        {
            text.AppendLine($"  {(invariant.Holds ? "OK  " : "FAIL")} {invariant.Name} ({invariant.Checked} checked): {invariant.Description}");
        }

        text.AppendLine($"violations: {Violations.Count}");
        foreach (var violation in Violations.Take(50))
        {
            text.AppendLine($"  {violation}");
        }

        return text.ToString();
    }
}
