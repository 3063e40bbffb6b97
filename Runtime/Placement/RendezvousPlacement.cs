using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Runtime.Placement;

/// <summary>
/// Hash placement with no directory: a grain's owner is the active silo with the highest score for
/// (grain, silo) (rendezvous hashing). Any silo holding the same view computes the same owner; when a silo leaves only
/// its grains move, and when one joins it takes about 1/N of the grains from the others.
/// </summary>
public static class RendezvousPlacement
{
    /// <summary>Keys that begin with this and go on with a silo's <c>endpoint@generation</c> (<see cref="PinnedTo"/>) are
    /// owned by that silo while it is active, and placed by hash otherwise. For stateless helpers that must run where
    /// some other grains live (the controller's relay of partition commands); no validated key (topic, group, broker)
    /// can contain ':'.</summary>
    public const string PinnedKeyPrefix = "silo:";

    /// <summary>A key that places a grain on <paramref name="silo"/> while it is active.</summary>
    public static string PinnedTo(SiloAddress silo) => PinnedKeyPrefix + silo;

    /// <summary>The owner of <paramref name="grainId"/> among <paramref name="activeSilos"/>, or <c>null</c> if there is none.</summary>
    public static SiloAddress? Owner(GrainId grainId, IReadOnlyList<SiloAddress> activeSilos)
    {
        if (activeSilos.Count == 0)
        {
            return null;
        }

        if (grainId.Key.StartsWith(PinnedKeyPrefix, StringComparison.Ordinal) && PinnedOwner(grainId.Key, activeSilos) is { } pinned)
        {
            return pinned;
        }

        var grainHash = Hash(grainId.Type, grainId.Key);
        SiloAddress? best = null;
        var bestScore = 0UL;
        // Indexed, not foreach: enumerating an IReadOnlyList allocates, and every grain call asks.
        for (var i = 0; i < activeSilos.Count; i++)
        {
            var silo = activeSilos[i];
            var score = Mix(grainHash ^ SiloHash(silo));
            if (best is null || score > bestScore || (score == bestScore && silo.CompareTo(best) > 0))
            {
                (best, bestScore) = (silo, score);
            }
        }

        return best;
    }

    private static SiloAddress? PinnedOwner(string key, IReadOnlyList<SiloAddress> activeSilos)
    {
        var named = key.AsSpan(PinnedKeyPrefix.Length);
        for (var i = 0; i < activeSilos.Count; i++)
        {
            if (named.SequenceEqual(activeSilos[i].ToString()))
            {
                return activeSilos[i];
            }
        }

        return null;
    }

    // Every grain call asks for its owner, so a silo's hash is computed once, not per call (there are only as many
    // entries as silo incarnations this process has seen).
    private static readonly ConcurrentDictionary<SiloAddress, ulong> s_siloHashes = new();

    private static ulong SiloHash(SiloAddress silo)
        => s_siloHashes.GetOrAdd(silo, static s => Hash(s.Endpoint, s.Generation.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>FNV-1a over UTF-8 of both parts (a separator between them), finished with a strong mixer. Stable
    /// across processes and versions, unlike <see cref="string.GetHashCode()"/>.</summary>
    private static ulong Hash(string first, string second)
    {
        var hash = 14695981039346656037UL;
        hash = Fnv(hash, first);
        hash = (hash ^ 0x1F) * 1099511628211UL;
        hash = Fnv(hash, second);
        return Mix(hash);
    }

    private static ulong Fnv(ulong hash, string text)
    {
        Span<byte> buffer = stackalloc byte[256];
        var bytes = Encoding.UTF8.GetByteCount(text) <= buffer.Length ? buffer[..Encoding.UTF8.GetBytes(text, buffer)] : Encoding.UTF8.GetBytes(text);
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return hash;
    }

    /// <summary>SplitMix64's finaliser: every input bit affects every output bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
