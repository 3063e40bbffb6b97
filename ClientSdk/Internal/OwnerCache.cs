using System.Collections.Concurrent;

namespace OrleansMeta.Client.Internal;

/// <summary>
/// Which silo owns the grain behind each route (a consumer group, a topic, a partition, a broker), as silos last said:
/// learned from a coordinator lookup or from the <c>Meta-Coordinator</c> or <c>Meta-Owner</c> header of a forwarded
/// call, dropped when a call sent there fails. A silo that failed is not taken back for <see cref="AvoidFor"/>, so an
/// owner this client cannot reach (a URL only the cluster's network knows) costs one failed attempt now and then rather
/// than one per call. Keys come from <see cref="Routes"/>.
/// </summary>
internal sealed class OwnerCache(TimeProvider time)
{
    /// <summary>How long a silo whose direct call failed is not used as an owner.</summary>
    internal static readonly TimeSpan AvoidFor = TimeSpan.FromSeconds(5);

    /// <summary>Beyond this many routes the cache starts over: a client that touches very many (an admin tool fetching
    /// every group's offsets) must not grow without bound, and losing the entries only costs forwarding hops. A broker
    /// leading a twelfth of a million partitions fits (about 150 bytes an entry).</summary>
    internal const int MaxRoutes = 100_000;

    private readonly ConcurrentDictionary<string, Uri> _byRoute = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Uri, long> _avoidUntil = new();

    public int Count => _byRoute.Count;

    /// <summary>The silo to send <paramref name="route"/>'s calls to, unless none is known or the one known failed
    /// lately (for another route perhaps: a silo that went away fails for all it owned).</summary>
    public bool TryGet(string route, out Uri owner)
    {
        if (!_byRoute.TryGetValue(route, out owner!))
        {
            return false;
        }

        if (!_avoidUntil.IsEmpty && _avoidUntil.TryGetValue(owner, out var until))
        {
            if (time.GetTimestamp() < until)
            {
                _byRoute.TryRemove(new KeyValuePair<string, Uri>(route, owner));
                return false;
            }

            _avoidUntil.TryRemove(new KeyValuePair<Uri, long>(owner, until));
        }

        return true;
    }

    /// <summary>Takes <paramref name="url"/> as <paramref name="route"/>'s owner, unless it is not an absolute http(s)
    /// URL or failed lately.</summary>
    public void Learn(string route, string? url)
    {
        if (url is null || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            || uri.Query.Length > 0 || uri.Fragment.Length > 0)
        {
            return;
        }

        // A base URL without a trailing slash would lose its last segment when combined with a relative path.
        var owner = uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");
        if (_avoidUntil.TryGetValue(owner, out var until))
        {
            if (time.GetTimestamp() < until)
            {
                return;
            }

            _avoidUntil.TryRemove(new KeyValuePair<Uri, long>(owner, until));
        }

        if (_byRoute.Count >= MaxRoutes && !_byRoute.ContainsKey(route))
        {
            _byRoute.Clear();
        }

        _byRoute[route] = owner;
    }

    /// <summary>A call to <paramref name="owner"/> for <paramref name="route"/> failed: send the route's calls to the
    /// bootstrap silos again, and do not use that silo as an owner for a while.</summary>
    public void Failed(string route, Uri owner)
    {
        _byRoute.TryRemove(new KeyValuePair<string, Uri>(route, owner));
        _avoidUntil[owner] = time.GetTimestamp() + (long)(AvoidFor.TotalSeconds * time.TimestampFrequency);
    }
}

/// <summary>Keys of <see cref="OwnerCache"/>: one per grain the service routes by, named by what the client knows (a
/// topic's name rather than its id: a topic created again under the same name is owned elsewhere, and the next
/// forwarded answer says so).</summary>
internal static class Routes
{
    public static string Group(string groupId) => "group/" + groupId;

    public static string Topic(string topic) => "topic/" + topic;

    public static string Partition(string topic, int partition) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"partition/{topic}/{partition}");

    public static string Broker(int brokerId) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"broker/{brokerId}");
}
