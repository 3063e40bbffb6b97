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
    /// Asks <paramref name="target"/>, a leaving silo, whether it has released <paramref name="grainId"/>; it answers
    /// once its activation of the grain has deactivated. True only when that incarnation itself said so within
    /// <paramref name="timeout"/>; false when it is not leaving, did not answer in time, or another incarnation answered.
    /// </summary>
    public async Task<bool> AskReleasedAsync(SiloAddress target, GrainId grainId, SiloAddress? self, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"{SiloEndpoints.Prefix}/{MembershipEndpoints.ReleasedPath}")
            {
                Content = JsonContent.Create(new ReleaseQuery(grainId.ToString())),
            };
            using var response = await client.SendAsync(target, request, self, linked.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                return false;
            }

            var answer = await response.Content.ReadFromJsonAsync<ReleaseResponse>(linked.Token).ConfigureAwait(false);
            return answer is { Released: true } && answer.Endpoint == target.Endpoint && answer.Generation == target.Generation;
        }
        catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return false;
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
