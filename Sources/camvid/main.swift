import CamvidCLI

await Camvid.main()
