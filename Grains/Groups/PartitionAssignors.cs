using System.Diagnostics.CodeAnalysis;

namespace OrleansMeta.Grains.Groups;

/// <summary>The server-side assignors a consumer group can choose by name (KIP-848's <c>group.remote.assignor</c>).</summary>
public static class PartitionAssignors
{
    // Assignors hold no state, so one instance of each serves every group.
    private static readonly IPartitionAssignor[] All = [new UniformAssignor(), new RangeAssignor()];

    /// <summary>The assignor of a group that names none: <c>uniform</c>, as in Kafka.</summary>
    public static IPartitionAssignor Default { get; } = All[0];

    /// <summary>The names of every assignor, the default first.</summary>
    public static IReadOnlyList<string> Names { get; } = All.Select(a => a.Name).ToArray();

    /// <summary>The assignor called <paramref name="name"/> (exact, as Kafka's names are).</summary>
    /// <exception cref="ArgumentException">No assignor has that name; the message lists the valid ones.</exception>
    public static IPartitionAssignor Get(string name) =>
        TryGet(name, out var assignor)
            ? assignor
            : throw new ArgumentException(
                $"Unknown assignor '{name}'. Valid assignors: {string.Join(", ", Names)}.", nameof(name));

    /// <summary>The assignor called <paramref name="name"/>, if there is one.</summary>
    public static bool TryGet(string? name, [NotNullWhen(true)] out IPartitionAssignor? assignor)
    {
        assignor = All.FirstOrDefault(a => string.Equals(a.Name, name, StringComparison.Ordinal));
        return assignor is not null;
    }
}
