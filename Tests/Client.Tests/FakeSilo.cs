using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace OrleansMeta.Client.Tests;

/// <summary>A request as a fake silo received it.</summary>
internal sealed record RecordedRequest(string Method, string RawTarget, string Body);

/// <summary>An in-process Kestrel server on a loopback port that stands in for a silo with canned minimal-API handlers,
/// and counts and records every request it receives.</summary>
internal sealed class FakeSilo : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private int _hits;

    private FakeSilo(Action<WebApplication> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        _app = builder.Build();
        _app.Use(async (context, next) =>
        {
            Interlocked.Increment(ref _hits);
            context.Request.EnableBuffering();
            var body = await new StreamReader(context.Request.Body).ReadToEndAsync(context.RequestAborted);
            context.Request.Body.Position = 0;
            _requests.Enqueue(new RecordedRequest(context.Request.Method, context.Features.Get<IHttpRequestFeature>()!.RawTarget, body));
            await next(context);
        });
        map(_app);
    }

    /// <summary>Answers as a silo that forwarded the call to <paramref name="owner"/> would: names it in
    /// <paramref name="header"/> (nothing when null, as the owner itself answers).</summary>
    public static void NameOwner(HttpContext context, string header, Uri? owner)
    {
        if (owner is not null)
        {
            context.Response.Headers[header] = owner.AbsoluteUri;
        }
    }

    /// <summary>The silo's base URL.</summary>
    public Uri Url { get; private set; } = null!;

    /// <summary>How many requests reached the silo.</summary>
    public int Hits => Volatile.Read(ref _hits);

    /// <summary>The requests received, oldest first.</summary>
    public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

    public static async Task<FakeSilo> StartAsync(Action<WebApplication> map)
    {
        var silo = new FakeSilo(map);
        await silo._app.StartAsync();
        silo.Url = new Uri(silo._app.Urls.First() + "/");
        return silo;
    }

    /// <summary>A loopback URL nobody listens on: connecting to it is refused.</summary>
    public static Uri RefusingUrl()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return new Uri($"http://127.0.0.1:{port}/");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
