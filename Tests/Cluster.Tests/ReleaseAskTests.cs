using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansMeta.Runtime;
using OrleansMeta.Runtime.Cluster;

namespace OrleansMeta.Cluster.Tests;

/// <summary>
/// The asking side of a hand-over (<c>MembershipPeers.AskReleasedAsync</c>) against a silo endpoint that answers as
/// given: which answers count as released, and what a silo of an earlier version, which knows nothing of joins, says.
/// </summary>
public sealed class ReleaseAskTests
{
    private static readonly GrainId Grain = new("account", "a-1");

    [Theory]
    // This version: released, and whether it handed over everything the asker owns.
    [InlineData("""{"released":true,"handedOver":true,"answersJoins":true}""", true, true)]
    [InlineData("""{"released":true,"handedOver":false,"answersJoins":true}""", true, false)]
    // Not released yet (its view lacks the asker, or its activation still runs): ask again.
    [InlineData("""{"released":false,"handedOver":false,"answersJoins":true}""", false, false)]
    // A handed-over flag without the release counts for nothing.
    [InlineData("""{"released":false,"handedOver":true,"answersJoins":true}""", false, false)]
    // An earlier version that is leaving answers once released.
    [InlineData("""{"released":true}""", true, false)]
    // An earlier version that is not leaving says "not released" to any question: no join wait on it, as before.
    [InlineData("""{"released":false}""", true, true)]
    public async Task An_answer_counts_as_released_and_handed_over_as_the_silo_that_gave_it_means_it(string answer, bool released, bool handedOver)
    {
        await using var peer = await FakePeer.StartAsync(answer);
        var result = await peer.AskAsync();
        Assert.Equal((released, handedOver), result);
    }

    [Theory]
    [InlineData("""{"released":false,"handedOver":true,"answersJoins":true}""", true)]
    [InlineData("""{"released":false,"handedOver":false,"answersJoins":true}""", false)]
    // An earlier version knows no such question; answered anyway, it says nothing of handing over.
    [InlineData("""{"released":false}""", false)]
    public async Task Whether_a_peer_handed_over_everything_is_its_own_answer(string answer, bool handedOver)
    {
        await using var peer = await FakePeer.StartAsync(answer);
        Assert.Equal(handedOver, await peer.AskHandedOverAsync());
    }

    [Fact]
    public async Task An_answer_from_another_incarnation_on_the_same_endpoint_is_not_a_release()
    {
        await using var peer = await FakePeer.StartAsync(generation => $$"""{"endpoint":"{0}","generation":{{generation + 1}},"released":true,"handedOver":true,"answersJoins":true}""");
        Assert.Equal((false, false), await peer.AskAsync());
    }

    /// <summary>A silo endpoint on loopback (HTTP/2 without TLS, as silos talk) whose release answer is a template:
    /// <c>{0}</c> becomes its endpoint; the generation is given to the template.</summary>
    private sealed class FakePeer : IAsyncDisposable
    {
        private const long Generation = 7;
        private readonly WebApplication _app;
        private readonly SiloAddress _address;

        private FakePeer(WebApplication app, SiloAddress address) => (_app, _address) = (app, address);

        /// <summary>Answers <paramref name="fields"/> (a JSON object) with this peer's endpoint and generation added.</summary>
        public static Task<FakePeer> StartAsync(string fields)
            => StartAsync(generation => fields.Insert(1, $"\"endpoint\":\"{{0}}\",\"generation\":{generation},"));

        public static async Task<FakePeer> StartAsync(Func<long, string> answer)
        {
            var port = FreePort();
            var endpoint = $"http://127.0.0.1:{port}";
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, o => o.Protocols = HttpProtocols.Http2));
            var app = builder.Build();
            var body = answer(Generation).Replace("{0}", endpoint, StringComparison.Ordinal);
            app.MapPost($"{SiloEndpoints.Prefix}/{MembershipEndpoints.ReleasedPath}", () => Results.Text(body, "application/json"));
            await app.StartAsync();
            return new FakePeer(app, new SiloAddress(endpoint, Generation));
        }

        public async Task<(bool Released, bool HandedOver)> AskAsync()
        {
            using var client = new SiloHttpClient(Options.Create(new ClusterOptions { ClusterSecret = "fake-peer-secret-fake-peer-secret" }));
            var peers = new MembershipPeers(client, TimeProvider.System);
            return await peers.AskReleasedAsync(_address, Grain, new SiloAddress("http://127.0.0.1:1", 1), TimeSpan.FromSeconds(10), CancellationToken.None);
        }

        public async Task<bool> AskHandedOverAsync()
        {
            using var client = new SiloHttpClient(Options.Create(new ClusterOptions { ClusterSecret = "fake-peer-secret-fake-peer-secret" }));
            return await new MembershipPeers(client, TimeProvider.System)
                .AskHandedOverAsync(_address, new SiloAddress("http://127.0.0.1:1", 1), TimeSpan.FromSeconds(10), CancellationToken.None);
        }

        public ValueTask DisposeAsync() => _app.DisposeAsync();

        private static int FreePort()
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
    }
}
