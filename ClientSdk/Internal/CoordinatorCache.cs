using System.Collections.Concurrent;

namespace OrleansMeta.Client.Internal;

/// <summary>
/// Where each consumer group's coordinator is, as silos last said: learned from a coordinator lookup or from the
/// <c>Meta-Coordinator</c> header of a forwarded group call, dropped when a call sent there fails. A silo that failed
/// is not taken back for <see cref="AvoidFor"/>, so a coordinator this client cannot reach (a URL only the cluster's
/// network knows) costs one failed attempt now and then rather than one per call.
/// </summary>
internal sealed class CoordinatorCache(TimeProvider time)
{
    /// <summary>How long a silo whose direct call failed is not used as a coordinator.</summary>
    internal static readonly TimeSpan AvoidFor = TimeSpan.FromSeconds(5);

    /// <summary>Beyond this many groups the cache starts over: a client that touches very many groups (an admin tool
    /// fetching offsets) must not grow without bound, and losing the entries only costs forwarding hops.</summary>
    internal const int MaxGroups = 10_000;

    private readonly ConcurrentDictionary<string, Uri> _byGroup = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Uri, long> _avoidUntil = new();

    public int Count => _byGroup.Count;

    /// <summary>The coordinator to send <paramref name="groupId"/>'s calls to, unless none is known or the one known
    /// failed lately (for another group perhaps: a silo that went away fails for all its groups).</summary>
    public bool TryGet(string groupId, out Uri coordinator)
    {
        if (!_byGroup.TryGetValue(groupId, out coordinator!))
        {
            return false;
        }

        if (!_avoidUntil.IsEmpty && _avoidUntil.TryGetValue(coordinator, out var until))
        {
            if (time.GetTimestamp() < until)
            {
                _byGroup.TryRemove(new KeyValuePair<string, Uri>(groupId, coordinator));
                return false;
            }

            _avoidUntil.TryRemove(new KeyValuePair<Uri, long>(coordinator, until));
        }

        return true;
    }

    /// <summary>Takes <paramref name="url"/> as <paramref name="groupId"/>'s coordinator, unless it is not an absolute
    /// http(s) URL or failed lately.</summary>
    public void Learn(string groupId, string? url)
    {
        if (url is null || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            || uri.Query.Length > 0 || uri.Fragment.Length > 0)
        {
            return;
        }

        // A base URL without a trailing slash would lose its last segment when combined with a relative path.
        var coordinator = uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
        if (_avoidUntil.TryGetValue(coordinator, out var until))
        {
            if (time.GetTimestamp() < until)
            {
                return;
            }

            _avoidUntil.TryRemove(new KeyValuePair<Uri, long>(coordinator, until));
        }

        if (_byGroup.Count >= MaxGroups && !_byGroup.ContainsKey(groupId))
        {
            _byGroup.Clear();
        }

        _byGroup[groupId] = coordinator;
    }

    /// <summary>A call to <paramref name="coordinator"/> for <paramref name="groupId"/> failed: send the group's calls
    /// to the bootstrap silos again, and do not use that silo as a coordinator for a while.</summary>
    public void Failed(string groupId, Uri coordinator)
    {
        _byGroup.TryRemove(new KeyValuePair<string, Uri>(groupId, coordinator));
        _avoidUntil[coordinator] = time.GetTimestamp() + (long)(AvoidFor.TotalSeconds * time.TimestampFrequency);
    }
}
