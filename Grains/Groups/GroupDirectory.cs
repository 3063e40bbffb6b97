using System.Collections.Concurrent;

namespace OrleansMeta.Grains.Groups;

/// <summary>
/// The consumer groups active on this silo: group grains add themselves when they activate and leave when they
/// deactivate. Listing every group asks each silo for its own, so a listing is served from the silos' memory with one
/// call per silo, never a database query per group. Groups with committed offsets stay active (see
/// <see cref="GroupLoader"/>), so every silo's part is complete.
/// </summary>
public sealed class GroupDirectory
{
    private readonly ConcurrentDictionary<string, byte> _groups = new(StringComparer.Ordinal);

    /// <summary>The ids of the groups active on this silo now.</summary>
    public IReadOnlyCollection<string> Groups => (IReadOnlyCollection<string>)_groups.Keys;

    /// <summary>How many groups are active on this silo.</summary>
    public int Count => _groups.Count;

    /// <summary>Whether <paramref name="groupId"/> is active on this silo.</summary>
    public bool Contains(string groupId) => _groups.ContainsKey(groupId);

    internal void Add(string groupId) => _groups.TryAdd(groupId, 0);

    internal void Remove(string groupId) => _groups.TryRemove(groupId, out _);
}
