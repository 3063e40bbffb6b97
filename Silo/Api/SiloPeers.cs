using System.Text.Json;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Silo.Api;

/// <summary>
/// Calls that go to every other active silo at once, for data every silo holds a part of (listing consumer groups), over
/// the silo-to-silo endpoint and its secret. (Log-offsets reports go through <see cref="LogOffsetsFanOut"/> instead.)
/// </summary>
internal sealed class SiloPeers(IClusterMembership membership, SiloHttpClient http)
{
    /// <summary>The JSON of silo-to-silo bodies.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>This silo, once registered.</summary>
    public SiloAddress? Self => membership.Self;

    /// <summary>Sends a request built by <paramref name="request"/> to every active silo but this one, each bounded by
    /// <paramref name="timeout"/>; answers each silo's body read as <typeparamref name="T"/>, or the failure.</summary>
    public async Task<IReadOnlyList<PeerAnswer<T>>> SendToOthersAsync<T>(
        Func<HttpRequestMessage> request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var self = membership.Self;
        var others = membership.CurrentView.ActiveSilos.Where(s => s != self).ToList();
        return await Task.WhenAll(others.Select(async silo =>
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            try
            {
                using var message = request();
                using var response = await http.SendAsync(silo, message, self, deadline.Token).ConfigureAwait(false);
                response.EnsureSuccessStatusCode();
                var body = await response.Content.ReadFromJsonAsync<T>(Json, deadline.Token).ConfigureAwait(false);
                return new PeerAnswer<T>(silo, body, null);
            }
            catch (Exception exception) when (exception is HttpRequestException or OperationCanceledException or JsonException
                && !cancellationToken.IsCancellationRequested)
            {
                return new PeerAnswer<T>(silo, default, exception);
            }
        })).ConfigureAwait(false);
    }
}

/// <summary>One silo's answer to <see cref="SiloPeers.SendToOthersAsync{T}"/>: its body, or why there is none.</summary>
internal sealed record PeerAnswer<T>(SiloAddress Silo, T? Body, Exception? Error);
