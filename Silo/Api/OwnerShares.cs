using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;
using OrleansMeta.Runtime.Placement;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Splits a batched request's items by the silo that owns each item's grain, so that each owning silo gets its share
/// in calls to a relay pinned there (<see cref="RendezvousPlacement.PinnedTo"/>): the request then crosses to another
/// silo once per owner (and per <c>chunk</c> items), not once per item.
/// </summary>
internal static class OwnerShares
{
    /// <summary>The shares: the key of the relay each goes to, and its items in request order (at most
    /// <paramref name="chunk"/> per share). Items whose grain has no active owner (no view yet) go to a relay keyed
    /// "any", which then calls their grains wherever they live.</summary>
    public static List<(string RelayKey, List<T> Items)> Of<TGrain, T>(GrainLocator locator, IEnumerable<T> items, Func<T, string> grainKey, int chunk)
        where TGrain : IGrainWithStringKey
    {
        var bySilo = new Dictionary<SiloAddress, List<T>>();
        var unplaced = new List<T>();
        foreach (var item in items)
        {
            var owner = locator.Locate<TGrain>(grainKey(item)).Owner?.Address;
            var share = unplaced;
            if (owner is not null && !bySilo.TryGetValue(owner, out share))
            {
                bySilo[owner] = share = [];
            }

            share.Add(item);
        }

        var shares = new List<(string, List<T>)>();
        foreach (var (key, share) in bySilo.Select(s => (RendezvousPlacement.PinnedTo(s.Key), s.Value)).Append(("any", unplaced)))
        {
            for (var start = 0; start < share.Count; start += chunk)
            {
                shares.Add((key, share.GetRange(start, Math.Min(chunk, share.Count - start))));
            }
        }

        return shares;
    }

    /// <summary>Calls a relay with one share. A failed call becomes that share's failure, which each of its items then
    /// answers with, rather than the whole request's: other shares may have changed things.</summary>
    public static async Task<(List<T> Items, TResult? Result, Exception? Failure)> CallAsync<T, TResult>(List<T> items, Func<List<T>, Task<TResult>> call)
        where TResult : class
    {
        try
        {
            return (items, await call(items).ConfigureAwait(false), null);
        }
        catch (Exception exception)
        {
            return (items, null, exception);
        }
    }
}
