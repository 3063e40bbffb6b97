using System.Net.Http.Json;

namespace OrleansMeta.Runtime.Cluster;

/// <summary>The membership protocol's calls to other silos, all through <see cref="SiloHttpClient"/>.</summary>
internal sealed class MembershipPeers(SiloHttpClient client, TimeProvider timeProvider)
{
    /// <summary>True when <paramref name="target"/> itself (same endpoint and generation) answered within
    /// <paramref name="timeout"/>. A process of another generation on that endpoint is not the incarnation asked for.</summary>
    public async Task<bool> ProbeAsync(SiloAddress target, SiloAddress? self, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{SiloEndpoints.Prefix}/{MembershipEndpoints.ProbePath}");
            using var response = await client.SendAsync(target, request, self, linked.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                return false;
            }

            var answer = await response.Content.ReadFromJsonAsync<ProbeResponse>(linked.Token).ConfigureAwait(false);
            return answer is not null && answer.Endpoint == target.Endpoint && answer.Generation == target.Generation;
        }
        catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return false;
        }
    }

    /// <summary>
    /// Asks <paramref name="target"/>, a leaving silo or one that owned the grain until this one (<paramref name="self"/>)
    /// joined, whether it has released <paramref name="grainId"/>; it answers once its activation of the grain has
    /// deactivated. Released only when that incarnation itself said so within <paramref name="timeout"/>; not when it
    /// did not answer in time or another incarnation answered. HandedOver when it also said it holds none of this
    /// silo's grains and never will while this silo is active.
    /// </summary>
    public async Task<(bool Released, bool HandedOver)> AskReleasedAsync(
        SiloAddress target, GrainId grainId, SiloAddress? self, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var answer = await AskAsync(target, new ReleaseQuery(grainId.ToString(), self?.Endpoint, self?.Generation), self, timeout, cancellationToken).ConfigureAwait(false);

        // A silo of an earlier version (during a rolling upgrade) does not answer for joins, and says "not released" to
        // a question it does not know; a leaving one of that version waits until it has released. Waiting on it would
        // only run into the activation timeout: do as before joins were asked about.
        return answer switch
        {
            null => (false, false),
            { AnswersJoins: false, Released: false } => (true, true),
            _ => (answer.Released, answer.Released && answer.HandedOver),
        };
    }

    /// <summary>Asks <paramref name="target"/>, an active silo, whether it holds none of this silo's grains and never
    /// will while this silo is active; false also when it did not answer in time or is of an earlier version.</summary>
    public async Task<bool> AskHandedOverAsync(SiloAddress target, SiloAddress self, TimeSpan timeout, CancellationToken cancellationToken)
        => await AskAsync(target, new ReleaseQuery(null, self.Endpoint, self.Generation), self, timeout, cancellationToken).ConfigureAwait(false) is { HandedOver: true };

    /// <summary>The answer of <paramref name="target"/> itself (same endpoint and generation) to a release query, or
    /// null when it did not answer in time, refused it, or another incarnation answered.</summary>
    private async Task<ReleaseResponse?> AskAsync(SiloAddress target, ReleaseQuery query, SiloAddress? self, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"{SiloEndpoints.Prefix}/{MembershipEndpoints.ReleasedPath}")
            {
                Content = JsonContent.Create(query),
            };
            using var response = await client.SendAsync(target, request, self, linked.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }

            var answer = await response.Content.ReadFromJsonAsync<ReleaseResponse>(linked.Token).ConfigureAwait(false);
            return answer is not null && answer.Endpoint == target.Endpoint && answer.Generation == target.Generation ? answer : null;
        }
        catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return null;
        }
    }

    /// <summary>Tells every silo in <paramref name="targets"/>, concurrently and best effort, that the table reached
    /// <paramref name="version"/>. A silo that misses it catches up on its next periodic refresh.</summary>
    public Task NotifyAsync(IEnumerable<SiloAddress> targets, SiloAddress? self, long version, TimeSpan timeout, CancellationToken cancellationToken) =>
        Task.WhenAll(targets.Select(async target =>
        {
            using var deadline = new CancellationTokenSource(timeout, timeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, $"{SiloEndpoints.Prefix}/{MembershipEndpoints.MembershipPath}")
                {
                    Content = JsonContent.Create(new MembershipChangedNotice(version)),
                };
                using var response = await client.SendAsync(target, request, self, linked.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
                // Best effort by design.
            }
        }));
}
